import Foundation

// Plain (one element per block) types to f32. `src` may be unaligned (safetensors does not align
// tensors, FORMATS.md §1.3), so every multi-byte load is an unaligned load.

/// Exact fp16 → f32 widening from the bits, without branches so loops over it vectorize (Swift's
/// `Float(Float16)` is a library call on x86-64 without F16C). NaN payloads are kept, as numpy does.
@inline(__always)
func halfToFloat(_ h: UInt16) -> Float {
    let h32 = UInt32(h)
    let sign = (h32 & 0x8000) << 16
    let em = (h32 & 0x7FFF) << 13           // exponent and mantissa in f32 position
    let exp = em & 0x0F80_0000
    // Rebias the exponent by 127 − 15; inf / NaN (exponent 31) need a second rebias to reach 255.
    let normal = em &+ 0x3800_0000
    let infNaN = normal &+ 0x3800_0000
    // Subnormals (exponent 0): m · 2^-24 = (2^-14 · (1 + m/1024)) − 2^-14, computed exactly in f32.
    let sub = (Float(bitPattern: em &+ 0x3880_0000) - Float(bitPattern: 0x3880_0000)).bitPattern
    let bits = exp == 0 ? sub : (exp == 0x0F80_0000 ? infNaN : normal)
    return Float(bitPattern: bits | sign)
}

/// The fp16 at `offset` bytes into `p`, as f32.
@inline(__always)
func loadHalf(_ p: UnsafeRawPointer, _ offset: Int) -> Float {
    halfToFloat(UInt16(littleEndian: p.loadUnaligned(fromByteOffset: offset, as: UInt16.self)))
}

extension TensorCodec {
    static func dequantF32(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, _ n: Int) {
        // Little-endian host: the bytes already are the values.
        UnsafeMutableRawPointer(dst).copyMemory(from: src, byteCount: n * 4)
    }

    static func dequantF16(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, _ n: Int) {
        for i in 0..<n { dst[i] = loadHalf(src, 2 * i) }
    }

    static func dequantBF16(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, _ n: Int) {
        for i in 0..<n {
            dst[i] = BFloat16.toFloat(UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
        }
    }

    /// f64 → f32 rounds to nearest even (overflow → ±inf), like numpy's `astype(float32)`.
    static func dequantF64(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, _ n: Int) {
        for i in 0..<n {
            let bits = UInt64(littleEndian: src.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self))
            dst[i] = Float(Double(bitPattern: bits))
        }
    }

    /// Integers become their numeric value (I32 beyond 2^24 rounds to nearest even).
    static func dequantI8(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, _ n: Int) {
        let p = src.assumingMemoryBound(to: Int8.self)
        for i in 0..<n { dst[i] = Float(p[i]) }
    }

    static func dequantI16(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, _ n: Int) {
        for i in 0..<n { dst[i] = Float(Int16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: Int16.self))) }
    }

    static func dequantI32(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, _ n: Int) {
        for i in 0..<n { dst[i] = Float(Int32(littleEndian: src.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self))) }
    }
}
