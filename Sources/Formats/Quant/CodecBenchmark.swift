import Foundation

extension TensorCodec {
    /// Times `dequantize` of `elements` (rounded up to whole blocks) random but valid elements of `t`
    /// (finite fp16 scales), `repeats` times, through the public (multi-threaded) path.
    /// - Returns: `seconds`, the fastest repeat's wall time, and `gbPerSecond`, the f32 output bytes
    ///   (4 per element) written per second in that repeat, in 10^9 bytes.
    /// - Throws: `FormatError.unsupportedDType` when `canDequantize(t)` is false.
    public static func benchmarkDequantize(_ t: DType, elements: Int, repeats: Int) throws
        -> (gbPerSecond: Double, seconds: Double) {
        guard canDequantize(t) else { throw FormatError.unsupportedDType(t.name, operation: "dequantization") }
        precondition(elements > 0 && repeats > 0, "benchmarkDequantize needs elements > 0 and repeats > 0")
        let count = (elements + t.blockSize - 1) / t.blockSize * t.blockSize
        let src = randomBlocks(t, blocks: count / t.blockSize, seed: 0x5EED)
        var out = [Float](repeating: 0, count: count)
        var best = Double.infinity
        try src.withUnsafeBytes { s in
            try out.withUnsafeMutableBufferPointer { d in
                for _ in 0..<repeats {
                    let start = DispatchTime.now().uptimeNanoseconds
                    try dequantize(t, s, into: d)
                    best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
                }
            }
        }
        best = max(best, 1e-9)
        return (Double(count * 4) / best / 1e9, best)
    }

    /// Random bytes for `blocks` blocks of `t` whose fp16 scale fields (and plain float elements) are
    /// finite values of moderate size, from a deterministic xorshift generator.
    static func randomBlocks(_ t: DType, blocks: Int, seed: UInt64) -> [UInt8] {
        var state = seed | 1
        func next() -> UInt64 {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            return state
        }
        let bb = t.blockBytes
        var bytes = [UInt8](repeating: 0, count: blocks * bb)
        bytes.withUnsafeMutableBytes { raw in
            var i = 0
            while i + 8 <= raw.count { raw.storeBytes(of: next(), toByteOffset: i, as: UInt64.self); i += 8 }
            while i < raw.count { raw[i] = UInt8(truncatingIfNeeded: next()); i += 1 }
            // A moderate fp16 value: exponent field 1…29 (never inf/NaN), random sign and mantissa.
            func half() -> UInt16 {
                let r = next()
                return UInt16(r & 0x83FF) | UInt16(1 + (r >> 16) % 29) << 10
            }
            let fields: [Int]
            switch t {
            case .f16: fields = [0]
            case .q4_0, .q5_0, .q8_0: fields = [0]
            case .q4_1, .q5_1, .q4_K, .q5_K: fields = [0, 2]
            case .q2_K: fields = [80, 82]
            case .q3_K: fields = [108]
            case .q6_K: fields = [208]
            default: fields = []
            }
            for b in 0..<blocks {
                for f in fields { raw.storeBytes(of: half().littleEndian, toByteOffset: b * bb + f, as: UInt16.self) }
                if t == .f32 {
                    raw.storeBytes(of: Float(Int64(bitPattern: next() >> 40) - (1 << 23)) / 1e6,
                                   toByteOffset: b * 4, as: Float.self)
                }
            }
        }
        return bytes
    }
}
