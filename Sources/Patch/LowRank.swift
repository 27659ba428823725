import Dispatch

/// A truncated SVD of one dense matrix by a randomized range finder (Halko, Martinsson & Tropp 2011,
/// algorithms 4.4 and 5.1): Y = D Ω, a few power iterations Q ← orth(D orth(Dᵀ Q)), then the exact SVD
/// of the small Qᵀ D through the eigen-decomposition of its l×l Gram matrix (cyclic Jacobi).
///
/// Plain f64 loops, threaded over rows: the Patch module stays free of BLAS (which only the WilKE
/// module links), and the matrices here are one tensor's difference, at most a few times l·size flops.
/// The result only has to be good, not exact: extraction stores whatever factors it picks and a
/// forward residue makes apply byte-exact regardless.
struct LowRankApproximation {
    /// Singular values, descending, `rank` of them.
    var sigma: [Double]
    /// Left singular vectors [rows, rank] row-major.
    var left: [Double]
    /// Right singular vectors [cols, rank] row-major.
    var right: [Double]
    var rank: Int

    /// How many singular values exceed `tolerance` × the largest: the numerical rank as far as the
    /// sketch can see (equal to `rank` means "at least"). The default 1% sits above the rounding noise
    /// of F16 / BF16 storage (a 1% edit rounded to F16 leaves singular values near 1e-3 of the top).
    func numericalRank(tolerance: Double = 1e-2) -> Int {
        guard let top = sigma.first, top > 0 else { return 0 }
        return sigma.filter { $0 > tolerance * top }.count
    }

    /// - Parameters:
    ///   - d: [rows, cols] row-major.
    ///   - sketch: l, the number of random probes (clamped to min(rows, cols)).
    init(_ d: [Float], rows: Int, cols: Int, sketch: Int, powerIterations: Int = 2, seed: UInt64 = 0x5EED) {
        let l = max(1, min(sketch, rows, cols))
        var state = seed
        // Uniform(-1, 1) probes: any distribution with full-rank sketches works; no libm needed.
        var omega = [Double](repeating: 0, count: cols * l)
        for i in omega.indices {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            omega[i] = Double((z ^ (z >> 31)) >> 11) * 0x1p-52 - 1
        }
        var q = Dense.orthonormalize(Dense.times(d, rows, cols, omega, l), rows, l)
        for _ in 0..<powerIterations {
            let z = Dense.orthonormalize(Dense.transposeTimes(d, rows, cols, q, l), cols, l)
            q = Dense.orthonormalize(Dense.times(d, rows, cols, z, l), rows, l)
        }
        let z = Dense.transposeTimes(d, rows, cols, q, l)  // Dᵀ Q = Bᵀ, [cols, l]
        var gram = [Double](repeating: 0, count: l * l)   // B Bᵀ = Zᵀ Z
        for j in 0..<cols { for a in 0..<l { let za = z[j * l + a]; if za != 0 { for b in 0..<l { gram[a * l + b] += za * z[j * l + b] } } } }
        let (values, vectors) = Dense.symmetricEigen(gram, l)
        let order = (0..<l).sorted { values[$0] > values[$1] }
        sigma = order.map { max(0, values[$0]).squareRoot() }
        left = [Double](repeating: 0, count: rows * l)
        right = [Double](repeating: 0, count: cols * l)
        for (t, e) in order.enumerated() {
            for i in 0..<rows { var s = 0.0; for a in 0..<l { s += q[i * l + a] * vectors[a * l + e] }; left[i * l + t] = s }
            let inv = sigma[t] > 0 ? 1 / sigma[t] : 0
            for j in 0..<cols { var s = 0.0; for a in 0..<l { s += z[j * l + a] * vectors[a * l + e] }; right[j * l + t] = s * inv }
        }
        rank = l
    }
}

/// The few dense kernels the range finder needs.
enum Dense {
    /// D X: D [rows, cols] f32, X [cols, l] → [rows, l].
    static func times(_ d: [Float], _ rows: Int, _ cols: Int, _ x: [Double], _ l: Int) -> [Double] {
        var y = [Double](repeating: 0, count: rows * l)
        parallelRows(rows, &y, width: l) { i, out in
            d.withUnsafeBufferPointer { dp in
                x.withUnsafeBufferPointer { xp in
                    for j in 0..<cols {
                        let v = Double(dp[i * cols + j])
                        if v == 0 { continue }
                        for t in 0..<l { out[t] += v * xp[j * l + t] }
                    }
                }
            }
        }
        return y
    }

    /// Dᵀ Y: D [rows, cols] f32, Y [rows, l] → [cols, l]. Threads split the columns of D.
    static func transposeTimes(_ d: [Float], _ rows: Int, _ cols: Int, _ y: [Double], _ l: Int) -> [Double] {
        var z = [Double](repeating: 0, count: cols * l)
        let chunks = min(cols, 16)
        let per = (cols + chunks - 1) / chunks
        z.withUnsafeMutableBufferPointer { zp in
            let zs = UnsafeSendable(zp)
            d.withUnsafeBufferPointer { dp in
                y.withUnsafeBufferPointer { yp in
                    let ds = UnsafeSendable(dp), ys = UnsafeSendable(yp)
                    DispatchQueue.concurrentPerform(iterations: chunks) { c in
                        let lo = c * per, hi = min(cols, lo + per)
                        guard lo < hi else { return }
                        for i in 0..<rows {
                            for j in lo..<hi {
                                let v = Double(ds.value[i * cols + j])
                                if v == 0 { continue }
                                for t in 0..<l { zs.value[j * l + t] += v * ys.value[i * l + t] }
                            }
                        }
                    }
                }
            }
        }
        return z
    }

    /// Columns of X [n, l] made orthonormal (modified Gram-Schmidt, twice); columns that vanish
    /// (rank-deficient sketches) become zero.
    static func orthonormalize(_ x: [Double], _ n: Int, _ l: Int) -> [Double] {
        var x = x
        for _ in 0..<2 {
            for a in 0..<l {
                for b in 0..<a {
                    var dot = 0.0
                    for i in 0..<n { dot += x[i * l + a] * x[i * l + b] }
                    for i in 0..<n { x[i * l + a] -= dot * x[i * l + b] }
                }
                var norm = 0.0
                for i in 0..<n { norm += x[i * l + a] * x[i * l + a] }
                norm = norm.squareRoot()
                let inv = norm > 1e-300 ? 1 / norm : 0
                for i in 0..<n { x[i * l + a] *= inv }
            }
        }
        return x
    }

    /// Eigenvalues and eigenvectors (columns of [n, n] row-major) of a symmetric matrix, by cyclic
    /// Jacobi rotations.
    static func symmetricEigen(_ m: [Double], _ n: Int) -> (values: [Double], vectors: [Double]) {
        var a = m
        var v = [Double](repeating: 0, count: n * n)
        for i in 0..<n { v[i * n + i] = 1 }
        for _ in 0..<60 {
            var off = 0.0
            for p in 0..<n { for q in (p + 1)..<max(p + 1, n) { off += a[p * n + q] * a[p * n + q] } }
            if off < 1e-30 * max(1e-300, (0..<n).reduce(0.0) { $0 + a[$1 * n + $1] * a[$1 * n + $1] }) { break }
            for p in 0..<n {
                for q in (p + 1)..<max(p + 1, n) where a[p * n + q] != 0 {
                    let theta = (a[q * n + q] - a[p * n + p]) / (2 * a[p * n + q])
                    let t = (theta >= 0 ? 1.0 : -1.0) / (abs(theta) + (theta * theta + 1).squareRoot())
                    let c = 1 / (t * t + 1).squareRoot(), s = t * c
                    for k in 0..<n {
                        let akp = a[k * n + p], akq = a[k * n + q]
                        a[k * n + p] = c * akp - s * akq
                        a[k * n + q] = s * akp + c * akq
                    }
                    for k in 0..<n {
                        let apk = a[p * n + k], aqk = a[q * n + k]
                        a[p * n + k] = c * apk - s * aqk
                        a[q * n + k] = s * apk + c * aqk
                    }
                    for k in 0..<n {
                        let vkp = v[k * n + p], vkq = v[k * n + q]
                        v[k * n + p] = c * vkp - s * vkq
                        v[k * n + q] = s * vkp + c * vkq
                    }
                }
            }
        }
        return ((0..<n).map { a[$0 * n + $0] }, v)
    }

    /// Runs `body(row, output row)` for every row of a [rows, width] output, rows split over threads.
    private static func parallelRows(_ rows: Int, _ y: inout [Double], width: Int,
                                     _ body: @escaping @Sendable (Int, UnsafeMutableBufferPointer<Double>) -> Void) {
        let chunks = min(rows, 64)
        let per = (rows + chunks - 1) / chunks
        y.withUnsafeMutableBufferPointer { yp in
            let ys = UnsafeSendable(yp)
            DispatchQueue.concurrentPerform(iterations: chunks) { c in
                for i in (c * per)..<min(rows, (c + 1) * per) {
                    body(i, UnsafeMutableBufferPointer(rebasing: ys.value[(i * width)..<((i + 1) * width)]))
                }
            }
        }
    }
}

/// A pointer handed to worker threads that write disjoint parts.
private struct UnsafeSendable<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
