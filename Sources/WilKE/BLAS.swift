import COpenBLAS

/// Row-major sgemm, the only file that imports COpenBLAS:
/// C[M,N] = alpha * op(A) * op(B) + beta * C, with op(A) [M,K], op(B) [K,N].
public enum BLAS {
    public static func sgemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
        alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        precondition(m >= 0 && n >= 0 && k >= 0 && m <= Int(Int32.max) && n <= Int(Int32.max) && k <= Int(Int32.max))
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// Row-major sgemv: y[M] = alpha * op(A) x + beta * y, with A [M, N] (op(A) = Aᵀ when `trans`, then y is [N]).
    /// One matrix row at a time, without sgemm's packing copy: the better call for a single token.
    public static func sgemv(
        trans: Bool, m: Int, n: Int, alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
        x: UnsafePointer<Float>, beta: Float = 0, y: UnsafeMutablePointer<Float>
    ) {
        precondition(m >= 0 && n >= 0 && m <= Int(Int32.max) && n <= Int(Int32.max) && lda <= Int(Int32.max))
        cblas_sgemv(CblasRowMajor, trans ? CblasTrans : CblasNoTrans, Int32(m), Int32(n), alpha, a, Int32(lda),
                    x, 1, beta, y, 1)
    }

    /// The kernel set OpenBLAS picked at load time ("Prescott", "Haswell", "SkylakeX", ...). OpenBLAS 0.3.21
    /// does not recognise newer Xeons and falls back to "Prescott" (SSE3), about 3x slower for sgemm; the
    /// kernel can only be chosen before the library loads, via the environment variable OPENBLAS_CORETYPE.
    public static var coreName: String {
        guard let name = openblas_get_corename() else { return "" }
        return String(cString: name)
    }
}
