/// The uncentered key second moment C = (1/N) Σ_t k_t k_tᵀ of one layer (ROME's `mom2`, ALGORITHM.md §2.5)
/// with its Cholesky factor, so C⁻¹k (ROME's u = C⁻¹k̄, §2.2) is a triangular solve in f64 instead of
/// the reference's fp32 explicit inverse.
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
    /// [dim, dim] row-major, symmetric: C = Σ k kᵀ / count.
    public let moment: [Double]
    /// λ added to the diagonal before factoring (see the type's documentation); 0 when C was factored as is.
    public let ridge: Double
    /// Cholesky factor of C + λI as dpotrf leaves it (column-major upper triangle; the rest holds C + λI).
    let factor: [Double]

    /// Relative pivot floor: a factor with min(U_ii²) < pivotFloor · max(C_ii) is treated as singular.
    public static let pivotFloor = 1e-10

    /// - Parameter moment: [dim, dim] row-major symmetric second moment (already divided by `count`).
    public init(layer: Int, count: Int, moment: [Double]) throws {
        let dim = Int(Double(moment.count).squareRoot().rounded())
        precondition(dim * dim == moment.count, "the moment is not a square matrix")
        guard count > 0, dim > 0 else { throw WilKEError.emptyStatistics(layer: layer) }
        self.layer = layer
        self.dim = dim
        self.count = count
        self.moment = moment
        (factor, ridge) = try Self.factorize(moment, dim: dim, layer: layer, rankDeficient: count < dim)
    }

    private static func factorize(_ m: [Double], dim n: Int, layer: Int,
                                  rankDeficient: Bool) throws -> ([Double], Double) {
        let diag = (0..<n).map { m[$0 * n + $0] }
        let maxDiag = diag.max() ?? 0, meanDiag = diag.reduce(0, +) / Double(n)
        guard maxDiag > 0, maxDiag.isFinite else {
            throw WilKEError.singularCovariance(layer: layer, reason: "its diagonal is zero or not finite")
        }
        func attempt(_ lambda: Double) -> [Double]? {
            var a = m
            if lambda > 0 { for i in 0..<n { a[i * n + i] += lambda } }
            let info = a.withUnsafeMutableBufferPointer { BLAS.dpotrf(n: n, a: $0.baseAddress!, lda: n) }
            guard info == 0 else { return nil }
            // Column-major upper U_ii sits at [i, i] in either layout.
            var minPivot = Double.infinity
            for i in 0..<n { let u: Double = a[i * n + i]; minPivot = min(minPivot, u * u) }
            return minPivot >= pivotFloor * maxDiag ? a : nil
        }
        if !rankDeficient, let f = attempt(0) { return (f, 0) }
        for e in (rankDeficient ? -6 : -9)...(-1) {
            let lambda = meanDiag * pow10(e)
            if let f = attempt(lambda) { return (f, lambda) }
        }
        throw WilKEError.singularCovariance(layer: layer, reason: "no ridge up to 0.1 × its mean diagonal makes it positive definite")
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
            x.withUnsafeMutableBufferPointer { BLAS.dpotrs(n: dim, nrhs: 1, a: f.baseAddress!, lda: dim, b: $0.baseAddress!, ldb: dim) }
        }
        guard info == 0 else { throw WilKEError.singularCovariance(layer: layer, reason: "dpotrs returned \(info)") }
        return x
    }

    /// C·x in f64 (checks and tests). - Parameter x: [dim]
    public func multiply(_ x: [Double]) -> [Double] {
        precondition(x.count == dim)
        return (0..<dim).map { i in
            var s = 0.0
            for j in 0..<dim { s += moment[i * dim + j] * x[j] }
            return s
        }
    }

    /// tr(C) = E‖k‖².
    public var trace: Double { (0..<dim).reduce(0) { $0 + moment[$1 * dim + $1] } }

    /// (max U_ii / min U_ii)² from the Cholesky diagonal of C + λI: a cheap LOWER bound on its 2-norm
    /// condition number (the true value can be larger), enough to spot a badly conditioned layer.
    public var conditionEstimate: Double {
        let d = (0..<dim).map { abs(factor[$0 * dim + $0]) }
        guard let lo = d.min(), let hi = d.max(), lo > 0 else { return .infinity }
        return (hi / lo) * (hi / lo)
    }
}

private func pow10(_ e: Int) -> Double {
    var r = 1.0
    for _ in 0..<abs(e) { r *= 10 }
    return e < 0 ? 1 / r : r
}
