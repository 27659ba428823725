import Foundation
import Testing
@testable import Formats

@Suite("TensorCodec API, threading and exhaustive fp16")
struct QuantCodecTests {
    static let dequantTypes: [DType] = [.f32, .f16, .bf16, .f64, .i8, .i16, .i32,
                                        .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K]

    @Test func supportedTypes() {
        #expect(Set(DType.allCases.filter(TensorCodec.canDequantize)) == Set(Self.dequantTypes))
        #expect(Set(DType.allCases.filter(TensorCodec.canQuantize)) == [.f32, .f16, .bf16, .q4_0, .q4_1, .q8_0])
    }

    @Test func unsupportedTypesThrow() throws {
        let bytes = [UInt8](repeating: 0, count: 292)
        #expect(throws: FormatError.unsupportedDType("Q8_K", operation: "dequantization")) {
            try bytes.withUnsafeBytes { try TensorCodec.dequantize(.q8_K, $0, count: 256) }
        }
        #expect(throws: FormatError.unsupportedDType("Q4_K", operation: "quantization")) {
            try TensorCodec.quantize(.q4_K, [Float](repeating: 1, count: 256))
        }
        let e = FormatError.unsupportedDType("Q4_K", operation: "quantization")
        #expect(e.description == "dtype Q4_K is not supported for quantization")
    }

    @Test func sizeMismatchesThrow() throws {
        let bytes = [UInt8](repeating: 0, count: 40)
        // 2 Q4_1 blocks are 40 bytes; 3 blocks need 60.
        #expect(throws: FormatError.byteCountMismatch(dtype: "Q4_1", elements: 96, expected: 60, found: 40)) {
            try bytes.withUnsafeBytes { try TensorCodec.dequantize(.q4_1, $0, count: 96) }
        }
        #expect(throws: FormatError.notWholeBlocks(dtype: "Q4_1", elements: 33, blockSize: 32)) {
            try bytes.withUnsafeBytes { try TensorCodec.dequantize(.q4_1, $0, count: 33) }
        }
        #expect(throws: FormatError.notWholeBlocks(dtype: "Q8_0", elements: 48, blockSize: 32)) {
            try TensorCodec.quantize(.q8_0, [Float](repeating: 1, count: 48))
        }
        var out = [UInt8](repeating: 0, count: 17)
        #expect(throws: FormatError.byteCountMismatch(dtype: "Q4_0", elements: 32, expected: 18, found: 17)) {
            try [Float](repeating: 1, count: 32).withUnsafeBufferPointer { src in
                try out.withUnsafeMutableBytes { try TensorCodec.quantize(.q4_0, src, into: $0) }
            }
        }
        #expect(FormatError.byteCountMismatch(dtype: "Q4_1", elements: 96, expected: 60, found: 40).description
            == "96 elements of Q4_1 take 60 bytes, but the buffer has 40")
        // Empty tensors are fine.
        #expect(try [UInt8]().withUnsafeBytes { try TensorCodec.dequantize(.q6_K, $0, count: 0) } == [])
    }

    /// fp16 → f32 widening is exact, so Swift's own conversion is a complete reference: all 65,536 inputs.
    @Test func f16WideningIsExactForAllBitPatterns() throws {
        let bits = (0...UInt16.max).map { $0 }
        let got = try bits.withUnsafeBytes { try TensorCodec.dequantize(.f16, $0, count: bits.count) }
        let bad = bits.indices.filter { !sameFloat(got[$0], Float(Float16(bitPattern: bits[$0]))) }
        #expect(bad.isEmpty, "first bad fp16 bits: \(bad.first.map { String(bits[$0], radix: 16) } ?? "-")")
        // NaN payloads are kept (numpy does the same), so the mantissa survives widening.
        #expect(got[0x7E01].bitPattern == 0x7FC0_2000)
    }

    /// BF16 narrowing of every f32 with a chosen upper half and the tie-relevant lower halves.
    @Test func bf16RoundsToNearestEven() throws {
        let values: [Float] = [1.00390625, 1.01171875, Float(bitPattern: 0x3F80_8001), .greatestFiniteMagnitude, .nan]
        let q = try TensorCodec.quantize(.bf16, values)
        let u = q.withUnsafeBytes { Array($0.bindMemory(to: UInt16.self)) }
        // 0x3F808000 is a tie → even 0x3F80; 0x3F818000 → 0x3F82; just above the tie rounds up;
        // FLT_MAX rounds to +inf; NaN stays a quiet NaN.
        #expect(Array(u[0..<4]) == [0x3F80, 0x3F82, 0x3F81, 0x7F80])
        #expect(BFloat16.toFloat(u[4]).isNaN)
    }

    /// The threaded path (whole-block chunks across cores) equals the single-threaded path.
    @Test("multi-threaded equals single-threaded", arguments: [DType.q4_1, .q8_0, .q6_K, .q3_K, .f16])
    func parallelMatchesSerial(_ t: DType) throws {
        let blocks = (1 << 17) / t.blockSize + 3          // a ragged number of blocks
        let count = blocks * t.blockSize
        let src = TensorCodec.randomBlocks(t, blocks: blocks, seed: 42)
        var serial = [Float](repeating: 0, count: count), parallel = [Float](repeating: 1, count: count)
        try src.withUnsafeBytes { s in
            try serial.withUnsafeMutableBufferPointer { try TensorCodec.dequantize(t, s, into: $0, parallelThreshold: .max) }
            try parallel.withUnsafeMutableBufferPointer { try TensorCodec.dequantize(t, s, into: $0, parallelThreshold: 0) }
        }
        #expect(serial.indices.allSatisfy { sameFloat(serial[$0], parallel[$0]) })
        #expect(serial.allSatisfy { $0.isFinite })

        if TensorCodec.canQuantize(t) {
            var a = [UInt8](repeating: 0, count: src.count), b = [UInt8](repeating: 1, count: src.count)
            try serial.withUnsafeBufferPointer { v in
                try a.withUnsafeMutableBytes { try TensorCodec.quantize(t, v, into: $0, parallelThreshold: .max) }
                try b.withUnsafeMutableBytes { try TensorCodec.quantize(t, v, into: $0, parallelThreshold: 0) }
            }
            #expect(a == b)
        }
    }

    /// Above `parallelThreshold` the public entry point takes the threaded path; same result.
    @Test func largeTensorThroughPublicAPI() throws {
        let t = DType.q4_0
        let blocks = TensorCodec.parallelThreshold / 32 + 5
        let src = TensorCodec.randomBlocks(t, blocks: blocks, seed: 7)
        let all = try src.withUnsafeBytes { try TensorCodec.dequantize(t, $0, count: blocks * 32) }
        // Spot-check blocks spread over all chunks against a one-block dequantization.
        for b in stride(from: 0, to: blocks, by: blocks / 97) {
            let one = try src[b * 18..<(b + 1) * 18].withUnsafeBytes { try TensorCodec.dequantize(t, $0, count: 32) }
            #expect(Array(all[b * 32..<(b + 1) * 32]) == one, "block \(b)")
        }
    }

    @Test func unalignedSource() throws {
        let t = DType.f32
        let values: [Float] = [1.5, -2.25, 3e-40, .infinity]
        var bytes: [UInt8] = [0xAA]
        values.withUnsafeBytes { bytes += $0 }
        let got = try bytes.withUnsafeBytes { try TensorCodec.dequantize(t, UnsafeRawBufferPointer(rebasing: $0[1...]), count: 4) }
        #expect(got == values)
    }

    @Test func benchmarkHelperRuns() throws {
        let r = try TensorCodec.benchmarkDequantize(.q4_1, elements: 4096, repeats: 2)
        #expect(r.seconds > 0 && r.gbPerSecond > 0)
        #expect(throws: FormatError.self) { try TensorCodec.benchmarkDequantize(.iq2_xs, elements: 256, repeats: 1) }
    }
}
