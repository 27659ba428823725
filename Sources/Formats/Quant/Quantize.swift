import Foundation

// f32 → stored encodings, byte-identical to gguf-py `quants.py` (FORMATS.md §2.8). gguf-py works in
// f32 numpy arithmetic: `d` is computed in f32, then `id = 1 / d` (0 when d == 0), then each value is
// scaled by multiplying with `id` (not dividing by `d`); `d` is stored rounded to fp16 afterwards.
// Those exact steps, in that order, are what make the bytes match.

extension TensorCodec {
    static func quantF32(_ src: UnsafePointer<Float>, _ dst: UnsafeMutableRawPointer, _ n: Int) {
        dst.copyMemory(from: src, byteCount: n * 4)
    }

    /// Round to nearest even, overflow → ±inf (numpy `astype(float16)`; NaN stays NaN).
    static func quantF16(_ src: UnsafePointer<Float>, _ dst: UnsafeMutableRawPointer, _ n: Int) {
        for i in 0..<n {
            dst.storeBytes(of: Float16(src[i]).bitPattern.littleEndian, toByteOffset: 2 * i, as: UInt16.self)
        }
    }

    /// Round to nearest even, NaN quieted; no flushing of subnormals (gguf-py `BF16.quantize_blocks`).
    static func quantBF16(_ src: UnsafePointer<Float>, _ dst: UnsafeMutableRawPointer, _ n: Int) {
        for i in 0..<n {
            dst.storeBytes(of: BFloat16.fromFloat(src[i]).littleEndian, toByteOffset: 2 * i, as: UInt16.self)
        }
    }

    @inline(__always)
    static func storeHalf(_ v: Float, _ p: UnsafeMutableRawPointer, _ offset: Int) {
        p.storeBytes(of: Float16(v).bitPattern.littleEndian, toByteOffset: offset, as: UInt16.self)
    }

    /// `trunc(t)` clipped to `0...hi`, for t ≥ 0; NaN gives 0 (instead of a trap).
    @inline(__always)
    static func truncClip(_ t: Float, _ hi: Float) -> UInt8 {
        let c = t > 0 ? (t < hi ? t : hi) : 0
        return UInt8(Int32(c))
    }

    /// Q4_0: `max` = the value of largest magnitude (the first one on ties, as numpy `argmax`),
    /// d = max / −8, q = trunc(x · id + 8.5) clipped to 0…15.
    static func quantQ4_0(_ src: UnsafePointer<Float>, _ dst: UnsafeMutableRawPointer, _ blocks: Int) {
        for b in 0..<blocks {
            let x = src + b * 32, p = dst + b * 18
            var amax = abs(x[0]), max = x[0]
            for j in 1..<32 where abs(x[j]) > amax { amax = abs(x[j]); max = x[j] }
            let d = max / -8
            let id: Float = d == 0 ? 0 : 1 / d
            storeHalf(d, p, 0)
            let qs = (p + 2).assumingMemoryBound(to: UInt8.self)
            for j in 0..<16 {
                let lo = truncClip(x[j] * id + 8.5, 15), hi = truncClip(x[j + 16] * id + 8.5, 15)
                qs[j] = lo | hi << 4
            }
        }
    }

    /// Q4_1: d = (max − min) / 15, m = min, q = trunc((x − min) · id + 0.5) clipped to 0…15.
    static func quantQ4_1(_ src: UnsafePointer<Float>, _ dst: UnsafeMutableRawPointer, _ blocks: Int) {
        for b in 0..<blocks {
            let x = src + b * 32, p = dst + b * 20
            // Equal values differ only for ±0, which decides the sign of the stored m (and of d·q + m):
            // numpy's SIMD min/max reductions keep the last of tied values (measured with numpy 2.4 on
            // AVX-512 hosts: 100% of 20,000 random ±0 blocks), so ties replace here too.
            var mn = x[0], mx = x[0]
            for j in 1..<32 {
                if x[j] <= mn { mn = x[j] }
                if x[j] >= mx { mx = x[j] }
            }
            let d = (mx - mn) / 15
            let id: Float = d == 0 ? 0 : 1 / d
            storeHalf(d, p, 0)
            storeHalf(mn, p, 2)
            let qs = (p + 4).assumingMemoryBound(to: UInt8.self)
            for j in 0..<16 {
                let lo = truncClip((x[j] - mn) * id + 0.5, 15), hi = truncClip((x[j + 16] - mn) * id + 0.5, 15)
                qs[j] = lo | hi << 4
            }
        }
    }

    /// Q8_0: d = max|x| / 127, q = round-half-away-from-zero(x · id) (gguf-py `np_roundf`, ggml `roundf`).
    static func quantQ8_0(_ src: UnsafePointer<Float>, _ dst: UnsafeMutableRawPointer, _ blocks: Int) {
        for b in 0..<blocks {
            let x = src + b * 32, p = dst + b * 34
            var amax: Float = 0
            for j in 0..<32 { amax = Swift.max(amax, abs(x[j])) }
            let d = amax / 127
            let id: Float = d == 0 ? 0 : 1 / d
            storeHalf(d, p, 0)
            let qs = (p + 2).assumingMemoryBound(to: Int8.self)
            for j in 0..<32 {
                let r = (x[j] * id).rounded(.toNearestOrAwayFromZero)
                let c = r > -128 ? (r < 127 ? r : 127) : -128   // NaN → −128, never a trap
                qs[j] = Int8(c)
            }
        }
    }
}
