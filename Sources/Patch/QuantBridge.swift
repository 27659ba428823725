import Formats

/// The Patch library's view of the block codecs in Formats (`TensorCodec`): dequantize any block type
/// it knows, and requantize only where a reference quantizer exists (Q4_0, Q4_1, Q8_0). K-quants have
/// none (FORMATS.md §2.8), so their revert stores the original blocks.
enum QuantBridge {
    static func canDequantize(_ t: DType) -> Bool { t.isQuantized && TensorCodec.canDequantize(t) }

    static func canQuantize(_ t: DType) -> Bool { t.isQuantized && TensorCodec.canQuantize(t) }

    /// `count` elements of block type `t` as f32 (storage order).
    static func dequantize(_ t: DType, _ bytes: [UInt8], count: Int) throws -> [Float] {
        guard canDequantize(t) else { throw PatchError.unsupportedDType(t.name) }
        do {
            return try bytes.withUnsafeBytes { try TensorCodec.dequantize(t, $0, count: count) }
        } catch let e as FormatError {
            throw PatchError.unsupportedDType("\(t.name) (\(e))")
        }
    }

    /// `values` encoded as block type `t` with the reference quantizer, or nil when there is none.
    static func quantize(_ t: DType, _ values: [Float]) -> [UInt8]? {
        guard canQuantize(t) else { return nil }
        return try? TensorCodec.quantize(t, values)
    }
}
