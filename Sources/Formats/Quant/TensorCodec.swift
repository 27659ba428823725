import Foundation

/// Converts tensor elements between their stored encoding and f32: plain types (F32, F16, BF16, F64,
/// I8/I16/I32) and ggml's block-quantized types (FORMATS.md §2.6–2.8).
///
/// Results are bit-identical to the reference gguf-py (`gguf/quants.py`): every kernel performs the
/// same f32 operations in the same order, without fused multiply-adds.
///
/// Large tensors are split by whole blocks across `DispatchQueue.concurrentPerform`; each block is
/// computed independently, so the split never changes a result.
public enum TensorCodec {
    /// Below this many elements a conversion runs on the calling thread (thread start-up would cost
    /// more than the work).
    public static let parallelThreshold = 1 << 20

    /// Element types `dequantize` accepts.
    public static func canDequantize(_ t: DType) -> Bool { dequantKernel(t) != nil }

    /// Element types `quantize` produces: f32, f16, bf16, q4_0, q4_1, q8_0.
    public static func canQuantize(_ t: DType) -> Bool { quantKernel(t) != nil }

    /// Decodes `dst.count` elements of type `t` into f32.
    /// - Parameters:
    ///   - src: the raw little-endian bytes of exactly `dst.count` elements (whole blocks), any alignment.
    ///   - dst: `[dst.count]` f32 output.
    /// - Throws: `FormatError.unsupportedDType`, `.notWholeBlocks`, `.byteCountMismatch`.
    public static func dequantize(_ t: DType, _ src: UnsafeRawBufferPointer,
                                  into dst: UnsafeMutableBufferPointer<Float>) throws {
        try dequantize(t, src, into: dst, parallelThreshold: parallelThreshold)
    }

    /// Encodes `src.count` f32 values as type `t`.
    /// - Parameters:
    ///   - src: `[src.count]` f32 input (a whole number of blocks of `t`).
    ///   - dst: exactly `t.byteCount(elements: src.count)` bytes of output, any alignment.
    /// - Throws: `FormatError.unsupportedDType`, `.notWholeBlocks`, `.byteCountMismatch`.
    /// Non-finite inputs never trap, but their quantized bytes are unspecified (gguf-py's are too).
    public static func quantize(_ t: DType, _ src: UnsafeBufferPointer<Float>,
                                into dst: UnsafeMutableRawBufferPointer) throws {
        try quantize(t, src, into: dst, parallelThreshold: parallelThreshold)
    }

    /// Decodes `count` elements of type `t` from `src` (exactly their bytes) into a new array.
    public static func dequantize(_ t: DType, _ src: UnsafeRawBufferPointer, count: Int) throws -> [Float] {
        try checkSize(t, elements: count, bytes: src.count)
        return try [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            try dequantize(t, src, into: buffer)
            initialized = count
        }
    }

    /// Encodes `values` (a whole number of blocks of `t`) into new bytes.
    public static func quantize(_ t: DType, _ values: [Float]) throws -> [UInt8] {
        guard canQuantize(t) else { throw FormatError.unsupportedDType(t.name, operation: "quantization") }
        let bytes = try checkSize(t, elements: values.count, bytes: nil)
        var out = [UInt8](repeating: 0, count: bytes)
        try values.withUnsafeBufferPointer { src in
            try out.withUnsafeMutableBytes { try quantize(t, src, into: $0) }
        }
        return out
    }

    // MARK: - Implementation

    /// `dequantize` with an explicit threading threshold: tests force both paths with it, and the
    /// engine's block-at-a-time matmul splits its few-MiB panels, which sit below the default.
    public static func dequantize(_ t: DType, _ src: UnsafeRawBufferPointer, into dst: UnsafeMutableBufferPointer<Float>,
                           parallelThreshold: Int) throws {
        guard let kernel = dequantKernel(t) else {
            throw FormatError.unsupportedDType(t.name, operation: "dequantization")
        }
        try checkSize(t, elements: dst.count, bytes: src.count)
        guard dst.count > 0, let sp = src.baseAddress, let dp = dst.baseAddress else { return }
        // Chunks touch disjoint block ranges of the buffers, which outlive the (synchronous) split.
        nonisolated(unsafe) let s = sp, d = dp
        let bs = t.blockSize, bb = t.blockBytes
        forEachChunk(blocks: dst.count / bs, elements: dst.count, threshold: parallelThreshold) { start, n in
            kernel(s + start * bb, d + start * bs, n)
        }
    }

    /// `quantize` with an explicit threading threshold.
    static func quantize(_ t: DType, _ src: UnsafeBufferPointer<Float>, into dst: UnsafeMutableRawBufferPointer,
                         parallelThreshold: Int) throws {
        guard let kernel = quantKernel(t) else {
            throw FormatError.unsupportedDType(t.name, operation: "quantization")
        }
        try checkSize(t, elements: src.count, bytes: dst.count)
        guard src.count > 0, let sp = src.baseAddress, let dp = dst.baseAddress else { return }
        nonisolated(unsafe) let s = sp, d = dp
        let bs = t.blockSize, bb = t.blockBytes
        forEachChunk(blocks: src.count / bs, elements: src.count, threshold: parallelThreshold) { start, n in
            kernel(s + start * bs, d + start * bb, n)
        }
    }

    /// The byte size of `elements` of `t`; throws unless it is whole blocks and equals `bytes` (if given).
    @discardableResult
    static func checkSize(_ t: DType, elements: Int, bytes: Int?) throws -> Int {
        guard elements >= 0, let need = t.byteCount(elements: elements) else {
            throw FormatError.notWholeBlocks(dtype: t.name, elements: elements, blockSize: t.blockSize)
        }
        if let bytes, bytes != need {
            throw FormatError.byteCountMismatch(dtype: t.name, elements: elements, expected: need, found: bytes)
        }
        return need
    }

    /// Calls `body(firstBlock, blockCount)` over `0..<blocks`: once inline below `threshold` elements,
    /// else in contiguous chunks of whole blocks spread over the cores.
    static func forEachChunk(blocks: Int, elements: Int, threshold: Int, _ body: @Sendable (Int, Int) -> Void) {
        let cores = ProcessInfo.processInfo.activeProcessorCount
        guard elements >= threshold, cores > 1, blocks > 1 else { body(0, blocks); return }
        // A few chunks per core evens out cores that are busy with other work.
        let chunks = min(blocks, cores * 4)
        let per = (blocks + chunks - 1) / chunks
        DispatchQueue.concurrentPerform(iterations: chunks) { i in
            let start = i * per
            if start < blocks { body(start, min(per, blocks - start)) }
        }
    }

    /// Decodes `count` blocks (elements for plain types) from `src` into `dst`.
    typealias DequantKernel = @Sendable (_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, _ count: Int) -> Void
    /// Encodes `count` blocks (elements for plain types) from `src` into `dst`.
    typealias QuantKernel = @Sendable (_ src: UnsafePointer<Float>, _ dst: UnsafeMutableRawPointer, _ count: Int) -> Void

    static func dequantKernel(_ t: DType) -> DequantKernel? {
        switch t {
        case .f32: return dequantF32
        case .f16: return dequantF16
        case .bf16: return dequantBF16
        case .f64: return dequantF64
        case .i8: return dequantI8
        case .i16: return dequantI16
        case .i32: return dequantI32
        case .q4_0: return dequantQ4_0
        case .q4_1: return dequantQ4_1
        case .q5_0: return dequantQ5_0
        case .q5_1: return dequantQ5_1
        case .q8_0: return dequantQ8_0
        case .q2_K: return dequantQ2_K
        case .q3_K: return dequantQ3_K
        case .q4_K: return dequantQ4_K
        case .q5_K: return dequantQ5_K
        case .q6_K: return dequantQ6_K
        default: return nil
        }
    }

    static func quantKernel(_ t: DType) -> QuantKernel? {
        switch t {
        case .f32: return quantF32
        case .f16: return quantF16
        case .bf16: return quantBF16
        case .q4_0: return quantQ4_0
        case .q4_1: return quantQ4_1
        case .q8_0: return quantQ8_0
        default: return nil
        }
    }
}
