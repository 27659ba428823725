/// A fixed-size f32 buffer with a stable address, so kernels take plain pointers (llm.c style) without
/// nested `withUnsafe…` closures. Owned memory is freed in `deinit`; never let `p` escape the owner's life.
final class FloatBuffer: @unchecked Sendable {
    let count: Int
    let p: UnsafeMutablePointer<Float>

    /// Zero-filled buffer of `count` floats.
    init(count: Int) {
        precondition(count >= 0)
        self.count = count
        p = .allocate(capacity: max(count, 1))
        p.initialize(repeating: 0, count: max(count, 1))
    }

    convenience init(_ values: [Float]) {
        self.init(count: values.count)
        values.withUnsafeBufferPointer { src in
            if let base = src.baseAddress { p.update(from: base, count: values.count) }
        }
    }

    /// A copy of `other`'s values.
    convenience init(copying other: FloatBuffer) {
        self.init(count: other.count)
        p.update(from: other.p, count: other.count)
    }

    deinit { p.deallocate() }

    var array: [Float] { Array(UnsafeBufferPointer(start: p, count: count)) }

    /// Row `i` of a row-major matrix with `width` columns, copied out.
    func row(_ i: Int, width: Int) -> [Float] {
        precondition((i + 1) * width <= count)
        return Array(UnsafeBufferPointer(start: p + i * width, count: width))
    }

    subscript(i: Int) -> Float {
        get { p[i] }
        set { p[i] = newValue }
    }
}
