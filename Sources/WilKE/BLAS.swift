import COpenBLAS
import Synchronization

/// Row-major sgemm (and sgemv, syrk, Cholesky, the symmetric eigensolver), the only file that imports COpenBLAS:
/// C[M,N] = alpha * op(A) * op(B) + beta * C, with op(A) [M,K], op(B) [K,N].
public enum BLAS {
    /// Floating-point operations issued to the BLAS calls below since the process started (2·m·n·k per
    /// sgemm, 2·m·n per sgemv, n·n·k per syrk): the benchmark's FLOP count of an edit, measured, not estimated.
    /// Process-wide, so it is only meaningful around work that runs alone.
    public static var operations: Int { counter.load(ordering: .relaxed) }
    static let counter = Atomic<Int>(0)

    public static func sgemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
        alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        precondition(m >= 0 && n >= 0 && k >= 0 && m <= Int(Int32.max) && n <= Int(Int32.max) && k <= Int(Int32.max))
        counter.add(2 * m * n * k, ordering: .relaxed)
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
        counter.add(2 * m * n, ordering: .relaxed)
        cblas_sgemv(CblasRowMajor, trans ? CblasTrans : CblasNoTrans, Int32(m), Int32(n), alpha, a, Int32(lda),
                    x, 1, beta, y, 1)
    }

    /// Row-major symmetric rank-k update of the UPPER triangle only: C[N,N] = alpha·AᵀA + beta·C with A [K, N]
    /// (`lda` ≥ N). With A = keys [T, F] this is Σ_t k_t k_tᵀ; the strict lower triangle of C is not touched.
    public static func ssyrkUpperAtA(
        n: Int, k: Int, alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        precondition(n >= 0 && k >= 0 && n <= Int(Int32.max) && k <= Int(Int32.max) && lda <= Int(Int32.max))
        counter.add(n * n * k, ordering: .relaxed)
        cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, Int32(n), Int32(k), alpha, a, Int32(lda), beta, c, Int32(ldc))
    }

    /// Double-precision twin of `ssyrkUpperAtA`: C[N,N] = alpha·AᵀA + beta·C (upper triangle), A [K, N] row-major.
    public static func dsyrkUpperAtA(
        n: Int, k: Int, alpha: Double = 1, a: UnsafePointer<Double>, lda: Int,
        beta: Double = 0, c: UnsafeMutablePointer<Double>, ldc: Int
    ) {
        precondition(n >= 0 && k >= 0 && n <= Int(Int32.max) && k <= Int(Int32.max) && lda <= Int(Int32.max))
        counter.add(n * n * k, ordering: .relaxed)
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, Int32(n), Int32(k), alpha, a, Int32(lda), beta, c, Int32(ldc))
    }

    /// LAPACK dpotrf: in-place Cholesky factorisation A = UᵀU of a symmetric positive definite [N, N] matrix.
    /// LAPACK is column-major: for a FULL symmetric matrix the layout does not matter on input, and on output
    /// the factor U sits in the column-major upper triangle (= the row-major lower triangle); the other
    /// triangle keeps A. Returns LAPACK's `info`: 0 success, k > 0 when the leading minor of order k is not
    /// positive definite. `lower`: uplo 'L' instead, the factor L of A = L·Lᵀ in the column-major lower
    /// triangle = the row-major UPPER one (`KeyCovariance.factorInFull` fills and reads that one). Blocked and
    /// multithreaded in OpenBLAS, unlike the packed dpptrf (level-2 kernels; docs/BENCHMARKS.md, Scale).
    public static func dpotrf(n: Int, a: UnsafeMutablePointer<Double>, lda: Int, lower: Bool = false) -> Int {
        precondition(n >= 0 && n <= Int(Int32.max) && lda >= max(1, n))
        var uplo = CChar(UInt8(ascii: lower ? "L" : "U")), n32 = Int32(n), lda32 = Int32(lda), info: Int32 = 0
        dpotrf_(&uplo, &n32, a, &lda32, &info)
        return Int(info)
    }

    /// LAPACK dpotrs: solves A X = B in place for `nrhs` right-hand sides (B column-major [N, nrhs], one
    /// column per vector) using the factor `dpotrf` left in `a`. Returns LAPACK's `info` (0 success).
    public static func dpotrs(n: Int, nrhs: Int, a: UnsafePointer<Double>, lda: Int,
                              b: UnsafeMutablePointer<Double>, ldb: Int) -> Int {
        precondition(n >= 0 && nrhs >= 0 && n <= Int(Int32.max) && nrhs <= Int(Int32.max))
        var uplo = CChar(UInt8(ascii: "U")), n32 = Int32(n), nrhs32 = Int32(nrhs), lda32 = Int32(lda),
            ldb32 = Int32(ldb), info: Int32 = 0
        dpotrs_(&uplo, &n32, &nrhs32, a, &lda32, b, &ldb32, &info)
        return Int(info)
    }

    /// LAPACK dpptrf with uplo 'L': in-place Cholesky A = L·Lᵀ of a symmetric positive definite [N, N]
    /// matrix held as its packed triangle (N(N+1)/2 values). Column-major packed lower = row-major packed
    /// upper: row i's entries i..<N one row after another, the layout `StatsCache` files store. Returns `info`.
    public static func dpptrfPacked(n: Int, ap: UnsafeMutablePointer<Double>) -> Int {
        precondition(n >= 0 && n <= Int(Int32.max))
        var uplo = CChar(UInt8(ascii: "L")), n32 = Int32(n), info: Int32 = 0
        dpptrf_(&uplo, &n32, ap, &info)
        return Int(info)
    }

    /// LAPACK dpptrs with uplo 'L': solves A X = B in place for `nrhs` columns of B (column-major [N, nrhs])
    /// with A's packed Cholesky factor L in `ap` (column-major packed lower = row-major packed upper: row
    /// i's entries i..<N one row after another, the layout `StatsCache` files store). Returns `info`.
    public static func dpptrsPacked(n: Int, nrhs: Int, ap: UnsafePointer<Double>, b: UnsafeMutablePointer<Double>, ldb: Int) -> Int {
        precondition(n >= 0 && nrhs >= 0 && n <= Int(Int32.max) && nrhs <= Int(Int32.max))
        var uplo = CChar(UInt8(ascii: "L")), n32 = Int32(n), nrhs32 = Int32(nrhs), ldb32 = Int32(ldb), info: Int32 = 0
        dpptrs_(&uplo, &n32, &nrhs32, ap, b, &ldb32, &info)
        return Int(info)
    }

    /// LAPACK dsyevd (jobz 'V', uplo 'U'): all eigenvalues and eigenvectors of a symmetric [N, N] matrix, in
    /// place (a symmetric matrix reads the same in both layouts). On return `w` [N] holds the eigenvalues in
    /// ascending order and `a` the eigenvectors as column-major columns: eigenvector j is the contiguous
    /// memory a[j·N ..< (j+1)·N]. Returns LAPACK's `info` (0 success, > 0 no convergence).
    public static func dsyevd(n: Int, a: UnsafeMutablePointer<Double>, w: UnsafeMutablePointer<Double>) -> Int {
        precondition(n >= 1 && n <= Int(Int32.max))
        var jobz = CChar(UInt8(ascii: "V")), uplo = CChar(UInt8(ascii: "U")), n32 = Int32(n), lda = Int32(n), info: Int32 = 0
        // Workspace query first (lwork = liwork = -1), then the call with the sizes LAPACK asked for.
        var lwork: Int32 = -1, liwork: Int32 = -1, workSize = 0.0, iworkSize: Int32 = 0
        dsyevd_(&jobz, &uplo, &n32, a, &lda, w, &workSize, &lwork, &iworkSize, &liwork, &info)
        guard info == 0 else { return Int(info) }
        lwork = Int32(workSize.rounded(.up)); liwork = max(1, iworkSize)
        var work = [Double](repeating: 0, count: Int(lwork)), iwork = [Int32](repeating: 0, count: Int(liwork))
        counter.add(9 * n * n * n, ordering: .relaxed)  // the order of dsyevd's flop count with vectors
        work.withUnsafeMutableBufferPointer { wp in
            iwork.withUnsafeMutableBufferPointer { ip in
                dsyevd_(&jobz, &uplo, &n32, a, &lda, w, wp.baseAddress!, &lwork, ip.baseAddress!, &liwork, &info)
            }
        }
        return Int(info)
    }

    /// Threads OpenBLAS splits one call over (OPENBLAS_NUM_THREADS, else the cores).
    public static var threads: Int { Int(openblas_get_num_threads()) }

    /// Runs `body` with every BLAS call on the calling thread, for callers that run independent work on
    /// threads of their own: two small sgemms side by side keep two cores busier than one split in two.
    /// The setting is process-wide while `body` runs.
    public static func singleThreaded<T>(_ body: () throws -> T) rethrows -> T {
        let n = openblas_get_num_threads()
        openblas_set_num_threads(1)
        defer { openblas_set_num_threads(n) }
        return try body()
    }

    /// The kernel set OpenBLAS picked at load time ("Prescott", "Haswell", "SkylakeX", ...). OpenBLAS 0.3.21
    /// does not recognise newer Xeons and falls back to "Prescott" (SSE3), about 3x slower for sgemm; the
    /// kernel can only be chosen before the library loads, via the environment variable OPENBLAS_CORETYPE.
    public static var coreName: String {
        guard let name = openblas_get_corename() else { return "" }
        return String(cString: name)
    }
}
