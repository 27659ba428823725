/// The uncentered key second moment C = (1/N) Σ_t k_t k_tᵀ of one layer (ROME's `mom2`, ALGORITHM.md §2.5)
/// with its Cholesky factor, so C⁻¹k (ROME's u = C⁻¹k̄, §2.2) is a triangular solve in f64 instead of
/// the reference's fp32 explicit inverse.
///
/// Storage: C and its factor are kept as packed triangles (dim(dim+1)/2 f64, factored by dpotrf in a
/// temporary full matrix or by dpptrf in place, see `fullFactorLimit`; solved by LAPACK dpptrs), half a full matrix each and the same f64 arithmetic, so the accuracy is
/// unchanged. The moment itself is kept
/// only when asked for (`keepMoment`, the default for small callers and tests); the statistics pipeline
/// drops it after writing the cache file and factors in place, so a layer of d_ff = 14,336 costs one
/// 0.77 GiB triangle in memory instead of two 1.5 GiB matrices.
///
/// Ridge fallback: C is factored as is when it is numerically positive definite. It is not when a key
/// unit is dead (a zero row/column), when fewer tokens than key units were seen (rank ≤ N < dim), or when
/// a Cholesky pivot falls below `pivotFloor` × max diag(C). Then λ·I is added, λ = m·10^e with m the mean
/// diagonal, e climbing from -9 (from -6 when N < dim) to -1 until the factorisation passes; `ridge`
/// records λ (0 when none was needed). Past 10^-1·m the covariance is reported singular.
public struct KeyCovariance: Sendable {
    public let layer: Int
    /// Key width d_k (the MLP hidden size F).
    public let dim: Int
    /// Tokens the moment averages over.
    public let count: Int
    /// C's upper triangle row by row (row i holds columns i..<dim), when kept; see the type's documentation.
    public let packedMoment: [Double]?
    /// diag(C).
    public let diagonal: [Double]
    /// λ added to the diagonal before factoring (see the type's documentation); 0 when C was factored as is.
    public let ridge: Double
    /// Packed Cholesky factor L of C + λI (C + λI = L·Lᵀ) in dpptrf's / dpptrs's layout.
    let factor: [Double]

    /// Relative pivot floor: a factor with min(L_ii²) < pivotFloor · max(C_ii) is treated as singular.
    public static let pivotFloor = 1e-10

    /// - Parameter moment: [dim, dim] row-major symmetric second moment (already divided by `count`).
    public init(layer: Int, count: Int, moment: [Double]) throws {
        let dim = Int(Double(moment.count).squareRoot().rounded())
        precondition(dim * dim == moment.count, "the moment is not a square matrix")
        var packed = [Double]()
        packed.reserveCapacity(dim * (dim + 1) / 2)
        for i in 0..<dim { packed += moment[(i * dim + i)..<(i * dim + dim)] }
        try self.init(layer: layer, count: count, packed: consume packed, keepMoment: true)
    }

    /// - Parameters:
    ///   - packed: C's upper triangle row by row (already divided by `count`); factored in place when the
    ///     moment is not kept.
    ///   - reload: produces `packed` again for a ridge retry after an in-place attempt failed (e.g. by
    ///     re-reading the cache file); without it a copy is kept for the retries.
    public init(layer: Int, count: Int, packed: consuming [Double], keepMoment: Bool, reload: (() throws -> [Double])? = nil) throws {
        let dim = KeyCovariance.triangleSide(packed.count)
        precondition(dim * (dim + 1) / 2 == packed.count, "the packed moment is not a triangle")
        guard count > 0, dim > 0 else { throw WilKEError.emptyStatistics(layer: layer) }
        self.layer = layer
        self.dim = dim
        self.count = count
        diagonal = (0..<dim).map { packed[Self.diagonalIndex($0, dim)] }
        let spare = keepMoment || reload == nil ? packed : nil
        packedMoment = keepMoment ? packed : nil
        // `consume`: the only reference left is the factorisation's, which overwrites it in place.
        (factor, ridge) = try Self.factorize(consume packed, diagonal: diagonal, layer: layer, rankDeficient: count < dim) {
            if let spare { return spare }
            return try reload!()
        }
    }

    /// A factor read back from the cache (`StatsCache.loadFactor`); C itself is not kept.
    /// - factor: [dim·(dim+1)/2] packed L; diagonal: [dim] diag(C)
    init(layer: Int, count: Int, diagonal: [Double], ridge: Double, factor: [Double]) {
        self.layer = layer
        dim = diagonal.count
        self.count = count
        self.diagonal = diagonal
        self.ridge = ridge
        self.factor = factor
        packedMoment = nil
    }

    /// n with n(n+1)/2 == count (checked by the caller).
    static func triangleSide(_ count: Int) -> Int {
        let root: Double = (8 * Double(count) + 1).squareRoot()
        return Int(((root - 1) / 2).rounded())
    }

    /// Offset of C_ii in the packed triangle.
    static func diagonalIndex(_ i: Int, _ n: Int) -> Int { i * n - i * (i - 1) / 2 }

    private static func factorize(_ first: consuming [Double], diagonal diag: [Double], layer: Int, rankDeficient: Bool,
                                  fresh: () throws -> [Double]) throws -> ([Double], Double) {
        let n = diag.count
        let maxDiag = diag.max() ?? 0, meanDiag = diag.reduce(0, +) / Double(n)
        guard maxDiag > 0, maxDiag.isFinite else {
            throw WilKEError.singularCovariance(layer: layer, reason: "its diagonal is zero or not finite")
        }
        var pending: [Double]? = consume first
        func attempt(_ lambda: Double) throws -> [Double]? {
            var a: [Double]
            if let p = pending { a = p; pending = nil } else { a = try fresh() }
            if lambda > 0 { for i in 0..<n { a[diagonalIndex(i, n)] += lambda } }
            let info = n * n * 8 <= fullFactorLimit
                ? factorInFull(&a, n: n)
                : a.withUnsafeMutableBufferPointer { BLAS.dpptrfPacked(n: n, ap: $0.baseAddress!) }
            guard info == 0 else { return nil }
            var minPivot = Double.infinity
            for i in 0..<n { let l = a[diagonalIndex(i, n)]; minPivot = min(minPivot, l * l) }
            return minPivot >= pivotFloor * maxDiag ? a : nil
        }
        if !rankDeficient, let f = try attempt(0) { return (f, 0) }
        for e in (rankDeficient ? -6 : -9)...(-1) {
            let lambda = meanDiag * pow10(e)
            if let f = try attempt(lambda) { return (f, lambda) }
        }
        throw WilKEError.singularCovariance(layer: layer, reason: "no ridge up to 0.1 × its mean diagonal makes it positive definite")
    }

    /// Up to this many bytes of full matrix (n² f64) a factorisation runs in full storage (`factorInFull`),
    /// above it in place by the packed dpptrf. 1 GiB: the 1B shape's n = 8192 (0.5 GiB) gets the blocked
    /// kernel; the 8B shape's n = 14,336 (1.5 GiB beside its 0.77 GiB triangle, once an edit's forward has
    /// brought the whole file into its RSS) would break an edit's file + 1.5 GiB budget, so it pays the
    /// packed kernel's time instead (docs/BENCHMARKS.md, Scale: 327 s against 33 s of CPU there).
    static let fullFactorLimit = 1 << 30

    /// LAPACK dpptrf's result, computed by the blocked full-storage dpotrf: the packed triangle (row i's columns
    /// i..<n, row after row) is spread into the upper triangle of a full row-major [n, n] matrix, factored
    /// there and packed back in place. Returns LAPACK's `info`.
    static func factorInFull(_ packed: inout [Double], n: Int) -> Int {
        var full = [Double](repeating: 0, count: n * n)
        var o = 0
        for i in 0..<n {
            let len = n - i
            packed.withUnsafeBufferPointer { src in
                full.withUnsafeMutableBufferPointer { dst in
                    (dst.baseAddress! + i * n + i).update(from: src.baseAddress! + o, count: len)
                }
            }
            o += len
        }
        let info = full.withUnsafeMutableBufferPointer { BLAS.dpotrf(n: n, a: $0.baseAddress!, lda: n, lower: true) }
        guard info == 0 else { return info }
        o = 0
        for i in 0..<n {
            let len = n - i
            full.withUnsafeBufferPointer { src in
                packed.withUnsafeMutableBufferPointer { dst in
                    (dst.baseAddress! + o).update(from: src.baseAddress! + i * n + i, count: len)
                }
            }
            o += len
        }
        return 0
    }

    /// `solve` as the closure editors take per layer.
    public var solver: CovarianceSolve { { [self] k in try solve(k) } }

    /// C⁻¹k (with C + λI when a ridge was needed), by the Cholesky factor in f64.
    /// - Parameter k: [dim] key
    public func solve(_ k: [Float]) throws -> [Double] { try solve(k.map(Double.init)) }

    /// C⁻¹k in f64. - Parameter k: [dim]
    public func solve(_ k: [Double]) throws -> [Double] {
        guard k.count == dim else { throw WilKEError.vectorSize(expected: dim, found: k.count) }
        var x = k
        let info = factor.withUnsafeBufferPointer { f in
            x.withUnsafeMutableBufferPointer { BLAS.dpptrsPacked(n: dim, nrhs: 1, ap: f.baseAddress!, b: $0.baseAddress!, ldb: dim) }
        }
        guard info == 0 else { throw WilKEError.singularCovariance(layer: layer, reason: "dpptrs returned \(info)") }
        return x
    }

    /// The full symmetric [dim, dim] row-major moment (checks and tests; needs `keepMoment`).
    public var moment: [Double] {
        guard let p = packedMoment else { preconditionFailure("the moment was not kept (keepMoment: false)") }
        var m = [Double](repeating: 0, count: dim * dim)
        var o = 0
        for i in 0..<dim {
            for j in i..<dim { m[i * dim + j] = p[o]; m[j * dim + i] = p[o]; o += 1 }
        }
        return m
    }

    /// C·x in f64 (checks and tests; needs `keepMoment`). - Parameter x: [dim]
    public func multiply(_ x: [Double]) -> [Double] {
        precondition(x.count == dim)
        let m = moment
        return (0..<dim).map { i in
            var s = 0.0
            for j in 0..<dim { s += m[i * dim + j] * x[j] }
            return s
        }
    }

    /// tr(C) = E‖k‖².
    public var trace: Double { diagonal.reduce(0, +) }

    /// (max L_ii / min L_ii)² from the Cholesky diagonal of C + λI: a cheap LOWER bound on its 2-norm
    /// condition number (the true value can be larger), enough to spot a badly conditioned layer.
    public var conditionEstimate: Double {
        let d = (0..<dim).map { abs(factor[Self.diagonalIndex($0, dim)]) }
        guard let lo = d.min(), let hi = d.max(), lo > 0 else { return .infinity }
        return (hi / lo) * (hi / lo)
    }
}

private func pow10(_ e: Int) -> Double {
    var r = 1.0
    for _ in 0..<abs(e) { r *= 10 }
    return e < 0 ? 1 / r : r
}
