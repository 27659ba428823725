import Formats
@testable import Patch

import TestSupport

/// Seeded SplitMix64 so every generated tensor and factor is reproducible.
typealias SeededRNG = SplitMix64

extension SplitMix64 {
    /// An approximately standard normal sample: the sum of 12 uniforms minus 6 (Irwin–Hall). Only
    /// additions, so the committed fixtures regenerate identically wherever libm differs.
    mutating func normal() -> Float {
        var s = 0.0
        for _ in 0..<12 { s += Double(next() >> 11) * 0x1p-53 }
        return Float(s - 6)
    }
}

enum Gen {
    static let allDTypes: [DType] = [.f32, .f16, .bf16, .q4_0, .q4_1, .q8_0, .q4_K, .q6_K]

    /// A [rows, cols] tensor of `dtype` with N(0, σ²) weights. Block types with a reference quantizer
    /// quantize the normal values; K-quants get random blocks with sane fp16 scales.
    static func tensor(_ dtype: DType, rows: Int, cols: Int, sigma: Float = 0.02, rng: inout SeededRNG) -> TensorBytes {
        let n = rows * cols
        let xs = (0..<n).map { _ in rng.normal() * sigma }
        let bytes: [UInt8]
        switch dtype {
        case .f32, .f16, .bf16, .q4_0, .q4_1, .q8_0: bytes = try! TensorCodec.quantize(dtype, xs)
        case .q4_K, .q6_K:
            var b = (0..<dtype.byteCount(elements: n)!).map { _ in UInt8.random(in: 0...255, using: &rng) }
            for blk in 0..<(n / 256) {
                let o = blk * dtype.blockBytes
                let scaleOffsets = dtype == .q4_K ? [0, 2] : [208]
                for so in scaleOffsets {
                    let h = Float16(Float.random(in: 1e-4..<2e-3, using: &rng)).bitPattern
                    b[o + so] = UInt8(h & 0xFF)
                    b[o + so + 1] = UInt8(h >> 8)
                }
            }
            bytes = b
        default: fatalError("no generator for \(dtype)")
        }
        return TensorBytes(dtype: dtype, rows: rows, cols: cols, bytes: bytes)
    }

    /// Factors [rows, k] and [cols, k] scaled so that ‖U Vᵀ‖_F ≈ `relative` · σ · sqrt(rows·cols).
    static func factors(rows: Int, cols: Int, rank: Int, relative: Float, sigma: Float = 0.02, rng: inout SeededRNG) -> ([Float], [Float]) {
        let u = (0..<(rows * rank)).map { _ in rng.normal() }
        var v = (0..<(cols * rank)).map { _ in rng.normal() }
        // ‖U Vᵀ‖ ≈ sqrt(rank · rows · cols) for i.i.d. normals.
        let target = relative * sigma * Float(rows * cols).squareRoot()
        let c = target / Float(rank * rows * cols).squareRoot()
        for i in v.indices { v[i] *= c }
        return (u, v)
    }
}
