import Foundation

// The 32-element block types (FORMATS.md §2.6–2.7). The f32 operation order follows gguf-py
// `quants.py` exactly (`d * q`, then `+ m`): a fused multiply-add would change the last bit.
// Inner loops have constant trip counts so the optimizer unrolls and vectorizes them.

extension TensorCodec {
    /// Q4_0: `d`, `qs[16]`; y = (nibble − 8) · d, low nibbles first.
    static func dequantQ4_0(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, _ blocks: Int) {
        for b in 0..<blocks {
            let p = src + b * 18, y = dst + b * 32
            let d = loadHalf(p, 0)
            let qs = (p + 2).assumingMemoryBound(to: UInt8.self)
            for j in 0..<16 {
                let v = qs[j]
                y[j] = d * Float(Int32(v & 0x0F) &- 8)
                y[j + 16] = d * Float(Int32(v >> 4) &- 8)
            }
        }
    }

    /// Q4_1: `d`, `m`, `qs[16]`; y = d · nibble + m.
    static func dequantQ4_1(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, _ blocks: Int) {
        for b in 0..<blocks {
            let p = src + b * 20, y = dst + b * 32
            let d = loadHalf(p, 0), m = loadHalf(p, 2)
            let qs = (p + 4).assumingMemoryBound(to: UInt8.self)
            for j in 0..<16 {
                let v = qs[j]
                y[j] = d * Float(v & 0x0F) + m
                y[j + 16] = d * Float(v >> 4) + m
            }
        }
    }

    /// Q5_0: `d`, `qh` (LE u32, bit j = 5th bit of element j), `qs[16]`; y = ((nibble | bit << 4) − 16) · d.
    static func dequantQ5_0(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, _ blocks: Int) {
        for b in 0..<blocks {
            let p = src + b * 22, y = dst + b * 32
            let d = loadHalf(p, 0)
            let qh = UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 2, as: UInt32.self))
            let qs = (p + 6).assumingMemoryBound(to: UInt8.self)
            for j in 0..<16 {
                let v = UInt32(qs[j])
                let lo = (v & 0x0F) | (((qh >> UInt32(j)) & 1) << 4)
                let hi = (v >> 4) | (((qh >> UInt32(j + 16)) & 1) << 4)
                y[j] = d * Float(Int32(lo) &- 16)
                y[j + 16] = d * Float(Int32(hi) &- 16)
            }
        }
    }

    /// Q5_1: `d`, `m`, `qh`, `qs[16]`; y = d · (nibble | bit << 4) + m.
    static func dequantQ5_1(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, _ blocks: Int) {
        for b in 0..<blocks {
            let p = src + b * 24, y = dst + b * 32
            let d = loadHalf(p, 0), m = loadHalf(p, 2)
            let qh = UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
            let qs = (p + 8).assumingMemoryBound(to: UInt8.self)
            for j in 0..<16 {
                let v = UInt32(qs[j])
                let lo = (v & 0x0F) | (((qh >> UInt32(j)) & 1) << 4)
                let hi = (v >> 4) | (((qh >> UInt32(j + 16)) & 1) << 4)
                y[j] = d * Float(lo) + m
                y[j + 16] = d * Float(hi) + m
            }
        }
    }

    /// Q8_0: `d`, `qs[32]` (int8); y = q · d.
    static func dequantQ8_0(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, _ blocks: Int) {
        for b in 0..<blocks {
            let p = src + b * 34, y = dst + b * 32
            let d = loadHalf(p, 0)
            let qs = (p + 2).assumingMemoryBound(to: Int8.self)
            for j in 0..<32 { y[j] = Float(qs[j]) * d }
        }
    }
}
