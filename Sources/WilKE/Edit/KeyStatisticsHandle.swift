/// Where an edit's key statistics come from, per layer: the solve C_l x = k (nil: C = I) and, for
/// `--preserve null-space`, C_l's null space (nil: no projection).
public struct KeyStatisticsSource: Sendable {
    public var solve: @Sendable (Int) throws -> CovarianceSolve?
    public var nullSpace: @Sendable (Int) throws -> NullSpace?

    public init(solve: @escaping @Sendable (Int) throws -> CovarianceSolve?,
                nullSpace: @escaping @Sendable (Int) throws -> NullSpace? = { _ in nil }) {
        self.solve = solve
        self.nullSpace = nullSpace
    }

    /// C = I everywhere, no projection.
    public static let identity = KeyStatisticsSource(solve: { _ in nil })
}

/// The keys of earlier edits at one layer in null-space coordinates, b_p = Ûᵀk_p [m], with their Gram
/// matrix G = BᵀB, so AlphaEdit's M = BBᵀ + L2·I (its `cache_c` seen through the projector) is solved
/// by Woodbury in the n_p × n_p space of the edits instead of the m × m null space.
public struct PreservedKeys: Sendable, Equatable {
    /// b_p per earlier edit, each [m].
    public private(set) var coordinates: [[Double]] = []
    /// G [n_p, n_p] row-major.
    private var gram: [Double] = []

    public init() {}

    public var count: Int { coordinates.count }

    mutating func append(_ b: [Double]) {
        let n = coordinates.count
        var g = [Double](repeating: 0, count: (n + 1) * (n + 1))
        for i in 0..<n { for j in 0..<n { g[i * (n + 1) + j] = gram[i * n + j] } }
        for i in 0..<n {
            let d = zip(coordinates[i], b).reduce(0.0) { $0 + $1.0 * $1.1 }
            g[i * (n + 1) + n] = d; g[n * (n + 1) + i] = d
        }
        g[n * (n + 1) + n] = b.reduce(0.0) { $0 + $1 * $1 }
        gram = g
        coordinates.append(b)
    }

    /// M⁻¹a with M = Σ_p b_p b_pᵀ + l2·I [m, m]: by Woodbury, (a − B (l2·I + G)⁻¹ Bᵀa) / l2. - a: [m]
    func solve(_ a: [Double], l2: Double, layer: Int) throws -> [Double] {
        let n = coordinates.count
        guard n > 0 else { return a.map { $0 / l2 } }
        var s = gram
        for i in 0..<n { s[i * n + i] += l2 }
        var y = coordinates.map { b in zip(b, a).reduce(0.0) { $0 + $1.0 * $1.1 } }
        let info = s.withUnsafeMutableBufferPointer { sp -> Int in
            let f = BLAS.dpotrf(n: n, a: sp.baseAddress!, lda: n)
            guard f == 0 else { return f }
            return y.withUnsafeMutableBufferPointer { BLAS.dpotrs(n: n, nrhs: 1, a: sp.baseAddress!, lda: n, b: $0.baseAddress!, ldb: n) }
        }
        guard info == 0 else { throw WilKEError.singularCovariance(layer: layer, reason: "l2·I + the earlier edits' Gram matrix (info \(info))") }
        var out = a
        for (p, b) in coordinates.enumerated() where y[p] != 0 { for j in out.indices { out[j] -= y[p] * b[j] } }
        return out.map { $0 / l2 }
    }
}

/// One layer's statistics as an update sees them: the solve, the null space, the earlier edits' keys.
public struct LayerKeyStatistics: Sendable {
    public var solve: CovarianceSolve?
    public var nullSpace: NullSpace?
    public var preserved = PreservedKeys()
    /// AlphaEdit's L2 (the weight of ‖ΔW‖² beside the edits' keys), used with a null space.
    public var l2: Double = 10
    /// The ‖W_l‖_F that LA divides by, when not the current weight's (`--la-reference original`).
    public var weightNorm: Double?

    public init(solve: CovarianceSolve?, nullSpace: NullSpace? = nil, preserved: PreservedKeys = PreservedKeys(), l2: Double = 10,
                weightNorm: Double? = nil) {
        self.solve = solve; self.nullSpace = nullSpace; self.preserved = preserved; self.l2 = l2; self.weightNorm = weightNorm
    }

    /// The projected right vector of AlphaEdit for one key k [F]: z = M⁻¹a in null-space coordinates
    /// (a = Ûᵀk) and aᵀz. AlphaEdit's update for the key is x = Û z / (1 + aᵀz) (Sherman–Morrison on
    /// (aaᵀ + M)⁻¹a), ΔW = R xᵀ; a rank-one method keeps only its direction û = Ûz / ‖z‖.
    func projectedSolve(_ k: [Float], layer: Int) throws -> (z: [Double], az: Double)? {
        guard let ns = nullSpace else { return nil }
        guard ns.rank > 0 else { throw WilKEError.emptyNullSpace(layer: layer, threshold: ns.threshold) }
        let a = ns.coordinates(k)
        let z = try preserved.solve(a, l2: l2, layer: layer)
        return (z, zip(a, z).reduce(0.0) { $0 + $1.0 * $1.1 })
    }
}

/// The key-statistics handle an `EditAlgorithm` works with: the source's solves and null spaces (each
/// fetched once) and the preserved-key accumulator, which gains the keys of every edit made through it
/// so later projected edits avoid overwriting earlier ones (AlphaEdit's `cache_c`).
public final class KeyStatisticsHandle: @unchecked Sendable {
    public let source: KeyStatisticsSource
    /// AlphaEdit's L2 for projected updates.
    public var l2: Double
    /// ‖W_l‖_F of the unedited layer, when LA is measured against it (nil: the current weight).
    public var referenceNorm: ((Int) throws -> Double)?
    private var norms: [Int: Double] = [:]
    private var solves: [Int: CovarianceSolve?] = [:]
    private var nullSpaces: [Int: NullSpace?] = [:]
    /// Per layer, the keys of the edits made so far (only kept when the layer has a null space).
    public private(set) var preserved: [Int: PreservedKeys] = [:]

    public init(_ source: KeyStatisticsSource, l2: Double = 10) {
        self.source = source
        self.l2 = l2
    }

    public func layer(_ l: Int) throws -> LayerKeyStatistics {
        if solves[l] == nil { solves[l] = .some(try source.solve(l)) }
        if nullSpaces[l] == nil { nullSpaces[l] = .some(try source.nullSpace(l)) }
        if let referenceNorm, norms[l] == nil { norms[l] = try referenceNorm(l) }
        return LayerKeyStatistics(solve: solves[l]!, nullSpace: nullSpaces[l]!, preserved: preserved[l] ?? PreservedKeys(), l2: l2,
                                  weightNorm: norms[l])
    }

    /// Adds an edit's key at layer `l` [F] to the accumulator (a no-op without a null space there).
    public func preserve(_ key: [Float], layer l: Int) throws {
        guard let ns = try self.layer(l).nullSpace else { return }
        preserved[l, default: PreservedKeys()].append(ns.coordinates(key))
    }
}
