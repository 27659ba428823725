// port of llm.c matmul_forward. Legend: N rows (packed tokens), C input width, OC output width.

/// `out = inp · Wᵀ + bias` with an f32 weight in nn.Linear layout, one sgemm over all packed tokens
/// (sgemv for a single token). The engine's products go through `Weight` (stored form, any dtype),
/// which lands here for an f32 copy; the naive loops are the tests' references.
enum Matmul {
    /// - out: [N, OC]
    /// - inp: [N, C]
    /// - weight: [OC, C] row-major
    /// - bias: [OC] or nil
    static func forward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                        bias: UnsafePointer<Float>?, n: Int, c: Int, oc: Int) {
        guard n > 0 else { return }
        if n == 1 { // decoding one token: sgemv reads the weight once, sgemm would first copy (pack) it
            BLAS.sgemv(trans: false, m: oc, n: c, a: weight, lda: c, x: inp, y: out)
        } else {
            BLAS.sgemm(transA: false, transB: true, m: n, n: oc, k: c, a: inp, lda: c, b: weight, ldb: c,
                       beta: 0, c: out, ldc: oc)
        }
        if let bias {
            for i in 0..<n {
                let row = out + i * oc
                for o in 0..<oc { row[o] += bias[o] }
            }
        }
    }

    /// Accumulates the input gradient `dinp += dout · W` (weights frozen: no dW, no dbias).
    /// - dinp: [N, C], accumulated
    /// - dout: [N, OC]
    /// - weight: [OC, C] row-major
    static func backward(dinp: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                         n: Int, c: Int, oc: Int) {
        guard n > 0 else { return }
        if n == 1 {
            BLAS.sgemv(trans: true, m: oc, n: c, a: weight, lda: c, x: dout, beta: 1, y: dinp)
        } else {
            BLAS.sgemm(transA: false, transB: false, m: n, n: c, k: oc, a: dout, lda: oc, b: weight, ldb: c,
                       beta: 1, c: dinp, ldc: c)
        }
    }

    /// Reference of `backward` for tests (same arguments).
    static func backwardNaive(dinp: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                              n: Int, c: Int, oc: Int) {
        for i in 0..<n {
            for j in 0..<c {
                var s: Float = 0
                for o in 0..<oc { s += dout[i * oc + o] * weight[o * c + j] }
                dinp[i * c + j] += s
            }
        }
    }

    /// Reference triple loop for tests (same arguments as `forward`).
    static func forwardNaive(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                             bias: UnsafePointer<Float>?, n: Int, c: Int, oc: Int) {
        for i in 0..<n {
            for o in 0..<oc {
                var s: Float = bias?[o] ?? 0
                for j in 0..<c { s += inp[i * c + j] * weight[o * c + j] }
                out[i * oc + o] = s
            }
        }
    }
}
