import Foundation

// The 256-element K-quant types (FORMATS.md §2.6–2.7). As in gguf-py `quants.py`, each sub-block's
// scale is formed first (`dl = d · sc`, `ml = dmin · m`, both f32) and then y = dl · q − ml; ggml's C
// code uses the same order, so all three agree bit for bit.

extension TensorCodec {
    /// Q2_K: `scales[16]` (low nibble scale, high nibble min), `qs[64]`, `d`, `dmin`.
    /// Element e = 128·half + 32·shift + l takes `(qs[32·half + l] >> 2·shift) & 3`, group e / 16.
    static func dequantQ2_K(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, _ blocks: Int) {
        for b in 0..<blocks {
            let p = src + b * 84, y = dst + b * 256
            let sc = p.assumingMemoryBound(to: UInt8.self)
            let qs = (p + 16).assumingMemoryBound(to: UInt8.self)
            let d = loadHalf(p, 80), dmin = loadHalf(p, 82)
            for g in 0..<16 {
                let dl = d * Float(sc[g] & 0x0F), ml = dmin * Float(sc[g] >> 4)
                let half = g >> 3, shift = UInt8(((g >> 1) & 3) * 2)
                let q = qs + half * 32 + (g & 1) * 16
                let out = y + g * 16
                for l in 0..<16 { out[l] = dl * Float((q[l] >> shift) & 3) - ml }
            }
        }
    }

    /// Q3_K: `hmask[32]`, `qs[64]`, `scales[12]` (16 packed 6-bit scales, offset 32), `d`.
    /// Low 2 bits as in Q2_K; 4 is subtracted when bit (e / 32) of `hmask[e % 32]` is clear.
    static func dequantQ3_K(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, _ blocks: Int) {
        for b in 0..<blocks {
            let p = src + b * 110, y = dst + b * 256
            let hmask = p.assumingMemoryBound(to: UInt8.self)
            let qs = (p + 32).assumingMemoryBound(to: UInt8.self)
            let s = (p + 96).assumingMemoryBound(to: UInt8.self)
            let d = loadHalf(p, 108)
            for g in 0..<16 {
                // Low 4 bits: nibble (g / 8) of byte g % 8; high 2 bits: pair (g / 4) of byte 8 + g % 4.
                let low = (s[g & 7] >> UInt8((g >> 3) * 4)) & 0x0F
                let high = (s[8 + (g & 3)] >> UInt8((g >> 2) * 2)) & 0x03
                let dl = d * Float(Int32(low | high << 4) &- 32)
                let half = g >> 3, shift = UInt8(((g >> 1) & 3) * 2)
                let q = qs + half * 32 + (g & 1) * 16
                let hm = hmask + (g & 1) * 16
                let bit = UInt8(g >> 1)             // = e / 32 for every element of the group
                let out = y + g * 16
                for l in 0..<16 {
                    let lo = Int32((q[l] >> shift) & 3)
                    let sub = Int32(((hm[l] >> bit) & 1) ^ 1) << 2
                    out[l] = dl * Float(lo &- sub)
                }
            }
        }
    }

    /// The 8 (scale, min) pairs of Q4_K / Q5_K from their 12 packed bytes (`get_scale_min_k4`).
    @inline(__always)
    static func scaleMinK4(_ s: UnsafePointer<UInt8>, _ j: Int) -> (UInt8, UInt8) {
        if j < 4 { return (s[j] & 63, s[j + 4] & 63) }
        return ((s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4), (s[j + 4] >> 4) | ((s[j] >> 6) << 4))
    }

    /// Q4_K: `d`, `dmin`, `scales[12]`, `qs[128]`. Group g (32 elements) takes nibble g % 2 of
    /// `qs[32·(g/2) + l]`.
    static func dequantQ4_K(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, _ blocks: Int) {
        for b in 0..<blocks {
            let p = src + b * 144, y = dst + b * 256
            let d = loadHalf(p, 0), dmin = loadHalf(p, 2)
            let s = (p + 4).assumingMemoryBound(to: UInt8.self)
            let qs = (p + 16).assumingMemoryBound(to: UInt8.self)
            for g in 0..<8 {
                let (sc, m) = scaleMinK4(s, g)
                let dl = d * Float(sc), ml = dmin * Float(m)
                let q = qs + (g >> 1) * 32, shift = UInt8((g & 1) * 4)
                let out = y + g * 32
                for l in 0..<32 { out[l] = dl * Float((q[l] >> shift) & 0x0F) - ml }
            }
        }
    }

    /// Q5_K: `d`, `dmin`, `scales[12]`, `qh[32]`, `qs[128]`; as Q4_K plus bit g of `qh[l]` as bit 4.
    static func dequantQ5_K(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, _ blocks: Int) {
        for b in 0..<blocks {
            let p = src + b * 176, y = dst + b * 256
            let d = loadHalf(p, 0), dmin = loadHalf(p, 2)
            let s = (p + 4).assumingMemoryBound(to: UInt8.self)
            let qh = (p + 16).assumingMemoryBound(to: UInt8.self)
            let qs = (p + 48).assumingMemoryBound(to: UInt8.self)
            for g in 0..<8 {
                let (sc, m) = scaleMinK4(s, g)
                let dl = d * Float(sc), ml = dmin * Float(m)
                let q = qs + (g >> 1) * 32, shift = UInt8((g & 1) * 4), bit = UInt8(g)
                let out = y + g * 32
                for l in 0..<32 {
                    let v = ((q[l] >> shift) & 0x0F) | (((qh[l] >> bit) & 1) << 4)
                    out[l] = dl * Float(v) - ml
                }
            }
        }
    }

    /// Q6_K: `ql[128]`, `qh[64]`, `scales[16]` (int8), `d`. Element e = 128·h + r takes the low 4 bits
    /// from nibble r / 64 of `ql[64·h + r % 64]`, the high 2 from pair r / 32 of `qh[32·h + r % 32]`,
    /// minus 32; y = (d · scales[e / 16]) · q.
    static func dequantQ6_K(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, _ blocks: Int) {
        for b in 0..<blocks {
            let p = src + b * 210, y = dst + b * 256
            let ql = p.assumingMemoryBound(to: UInt8.self)
            let qh = (p + 128).assumingMemoryBound(to: UInt8.self)
            let sc = (p + 192).assumingMemoryBound(to: Int8.self)
            let d = loadHalf(p, 208)
            for g in 0..<16 {
                let dl = d * Float(sc[g])
                let h = g >> 3, r0 = (g & 7) * 16       // r0: offset of the group inside its half
                let lp = ql + h * 64 + (r0 & 63), lshift = UInt8((r0 >> 6) * 4)
                let hp = qh + h * 32 + (r0 & 31), hshift = UInt8((r0 >> 5) * 2)
                let out = y + g * 16
                for l in 0..<16 {
                    let v = ((lp[l] >> lshift) & 0x0F) | (((hp[l] >> hshift) & 3) << 4)
                    out[l] = dl * Float(Int32(v) &- 32)
                }
            }
        }
    }
}
