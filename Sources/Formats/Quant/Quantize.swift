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
            dst.storeBytes(of: floatToHalf(src[i]).littleEndian, toByteOffset: 2 * i, as: UInt16.self)
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
        p.storeBytes(of: floatToHalf(v).littleEndian, toByteOffset: offset, as: UInt16.self)
    }

    // Swift's checked `Int32(Float)` conversion branches to a trap on out-of-range values, which stops
    // loops from vectorizing. Values here are small and already clamped, so float tricks stand in:
    // adding 2^23 rounds a value in [0, 2^22) to an integer (nearest even), and adding 1.5 · 2^23 puts an
    // integer in [−2^22, 2^22) into the low mantissa bits in two's complement.

    /// `trunc(c)` for 0 ≤ c < 2^22 (not NaN), still as a float.
    @inline(__always)
    static func truncSmall(_ c: Float) -> Float {
        let r = (c + 8_388_608) - 8_388_608
        return r > c ? r - 1 : r
    }

    /// The integer-valued `f` (−128 ≤ f ≤ 255) as its low byte.
    @inline(__always)
    static func lowByte(_ f: Float) -> UInt8 {
        UInt8(truncatingIfNeeded: (f + 12_582_912).bitPattern)
    }

    /// `trunc(t)` clipped to `0...hi` (numpy `trunc(...).astype(uint8).clip(0, hi)` for t ≥ 0); NaN → 0.
    @inline(__always)
    static func truncClip(_ t: Float, _ hi: Float) -> UInt8 {
        let c = t > 0 ? (t < hi ? t : hi) : 0
        return lowByte(truncSmall(c))
    }

    /// gguf-py `np_roundf` for |v| ≤ 127: b = ⌊a⌋ + ⌊2(a − ⌊a⌋)⌋ with a = |v|, every step exact, i.e.
    /// round half away from zero. |v| can exceed 127 only by rounding error (|x| ≤ amax), so clamping
    /// there changes nothing; NaN clamps to 127 too.
    @inline(__always)
    static func roundAway(_ v: Float) -> Int8 {
        let m = abs(v)
        let a: Float = m < 127 ? m : 127
        let fl = truncSmall(a)
        let b = a - fl >= 0.5 ? fl + 1 : fl
        return Int8(bitPattern: lowByte(v < 0 ? -b : b))
    }

    /// max |x| over one 32-value block. Max is order-independent here (|x| ≥ +0, NaN aside), so eight
    /// lanes can run side by side; a single running max would be a serial dependency chain.
    @inline(__always)
    static func absMax32(_ x: UnsafePointer<Float>) -> Float {
        let raw = UnsafeRawPointer(x)
        var m = SIMD8<Float>()
        for k in 0..<4 {
            let bits = raw.loadUnaligned(fromByteOffset: 32 * k, as: SIMD8<UInt32>.self) & 0x7FFF_FFFF
            let a = unsafeBitCast(bits, to: SIMD8<Float>.self)
            m.replace(with: a, where: a .> m)
        }
        return m.max()
    }

    /// Q4_0: `max` = the value of largest magnitude (the first one on ties, as numpy `argmax`),
    /// d = max / −8, q = trunc(x · id + 8.5) clipped to 0…15.
    static func quantQ4_0(_ src: UnsafePointer<Float>, _ dst: UnsafeMutableRawPointer, _ blocks: Int) {
        for b in 0..<blocks {
            let x = src + b * 32, p = dst + b * 18
            let amax = absMax32(x)
            var max = x[0]                          // all zero (or NaN): numpy's argmax gives index 0
            for j in 0..<32 where abs(x[j]) == amax { max = x[j]; break }
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
            let d = absMax32(x) / 127
            let id: Float = d == 0 ? 0 : 1 / d
            storeHalf(d, p, 0)
            let qs = (p + 2).assumingMemoryBound(to: Int8.self)
            for j in 0..<32 { qs[j] = roundAway(x[j] * id) }
        }
    }
}
