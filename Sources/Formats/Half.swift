/// bfloat16 <-> f32. (f16 uses Swift's native `Float16`, whose conversions are IEEE round-to-nearest-even.)
public enum BFloat16 {
    /// Exact widening: bf16 is the upper half of an f32.
    @inline(__always)
    public static func toFloat(_ bits: UInt16) -> Float { Float(bitPattern: UInt32(bits) << 16) }

    /// Round-to-nearest-even narrowing; NaNs stay NaN (quiet bit forced, as torch and safetensors do).
    @inline(__always)
    public static func fromFloat(_ value: Float) -> UInt16 {
        let u = value.bitPattern
        if value.isNaN { return UInt16(truncatingIfNeeded: (u >> 16) | 0x0040) }
        let rounding = UInt32(0x7FFF) + ((u >> 16) & 1)
        return UInt16(truncatingIfNeeded: (u &+ rounding) >> 16)
    }
}
