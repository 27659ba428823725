import Foundation

/// ROME's compute_u and the rank-one update (ALGORITHM.md §2.2, §2.4, §1.3): û = C⁻¹k̄ / ‖C⁻¹k̄‖,
/// r = δ / (k_c · û), ΔW = r ûᵀ on the logical W_down [C, F], and WilKE's score LA = ‖r‖ / ‖W‖_F.
public struct RankOneUpdate: Sendable {
    public var layer: Int
    /// r [C] (left factor, rows of W) and û [F] (right factor, columns of W).
    public var r: [Float]
    public var u: [Float]
    /// WilKE's relative update size ‖ΔW‖_F / ‖W‖_F = ‖r‖ / ‖W‖_F.
    public var relativeSize: Float
    public var optimization: DeltaOptimization
    /// k_c · û (the denominator; tiny values are ROME's "toxicity flash").
    public var denominator: Float
    /// k̄ [F], the key an accumulator preserves after the edit (AlphaEdit keeps the averaged keys).
    public var key: [Float] = []
    /// With `--norm-anchor`: the δ actually written, v*·(anchor/‖v*‖) − m₀ [C] (nil without).
    public var anchoredDelta: [Float]? = nil
}

extension TransformerModel {
    /// Keys at the subject's last token of every key row: (k̄ averaged over templates, k_c of the bare prompt).
    public func subjectKeys(_ inputs: RomeInputs, layer: Int) throws -> (mean: [Float], bare: [Float]) {
        guard let keys = try subjectKeys(inputs, layers: [layer])[layer] else { throw WilKEError.invalidLayer(layer) }
        return keys
    }

    /// û = C⁻¹k̄ / ‖C⁻¹k̄‖ [F] (k̄ / ‖k̄‖ without the covariance adjustment).
    func updateDirection(_ kMean: [Float], layer: Int, _ hp: EditHyperparameters, covariance: CovarianceSolve?) throws -> [Float] {
        try updateDirection(kMean, layer: layer, hp, statistics: LayerKeyStatistics(solve: covariance))
    }

    /// û [F]: ROME's C⁻¹k̄ / ‖C⁻¹k̄‖, or with a null space AlphaEdit's projected direction Û M⁻¹Ûᵀk̄ / ‖·‖
    /// (docs/ALGORITHM_NOTES.md, "Null-space preservation"): orthogonal to the preserved span, and with
    /// earlier edits' keys in M, turned away from them.
    func updateDirection(_ kMean: [Float], layer: Int, _ hp: EditHyperparameters, statistics: LayerKeyStatistics) throws -> [Float] {
        let direction: [Double]
        if let solved = try statistics.projectedSolve(kMean, layer: layer), let ns = statistics.nullSpace {
            direction = ns.vector(solved.z)
        } else {
            direction = try hp.useCovariance ? (statistics.solve?(kMean) ?? kMean.map(Double.init)) : kMean.map(Double.init)
        }
        let dirNorm = direction.reduce(0) { $0 + $1 * $1 }.squareRoot()
        guard dirNorm > 0, dirNorm.isFinite else { throw WilKEError.invalidBatch("the subject key is zero at layer \(layer)") }
        return direction.map { Float($0 / dirNorm) }
    }

    /// Computes δ at `layer`, then û and r. `covariance` solves C x = k for that layer (nil: C = I).
    /// - shared: the scan's δ = 0 pass and keys (`sharedScanPass`), if computed; the result is the same.
    public func rankOneUpdate(_ inputs: RomeInputs, layer: Int, _ hp: EditHyperparameters,
                              covariance: CovarianceSolve?, shared: SharedScanPass? = nil) throws -> RankOneUpdate {
        try rankOneUpdate(inputs, layer: layer, hp, statistics: LayerKeyStatistics(solve: covariance), shared: shared)
    }

    /// `rankOneUpdate` with a layer's full statistics (null space, earlier edits' keys) and, for
    /// `--norm-anchor`, NAS's anchor: v* = m₀ + δ is rescaled to ‖v*‖ = anchor before r is formed
    /// (docs/ALGORITHM_NOTES.md, "Norm-Anchor Scaling").
    public func rankOneUpdate(_ inputs: RomeInputs, layer: Int, _ hp: EditHyperparameters, statistics: LayerKeyStatistics,
                              anchor: Float? = nil, shared: SharedScanPass? = nil) throws -> RankOneUpdate {
        // û first, as ROME's compute_u precedes compute_v: a solve that loads its layer's factor for the
        // occasion (`wilke edit`) has let it go before the δ optimization's activations are allocated.
        let (kMean, kBare) = try shared?.keys[layer] ?? subjectKeys(inputs, layer: layer)
        let u = try updateDirection(kMean, layer: layer, hp, statistics: statistics)
        let opt = try optimizeDelta(inputs, layer: layer, hp, start: shared?.start(layer: layer))
        let key = hp.averagedKeys ? kMean : kBare
        let denom = zip(key, u).reduce(Float(0)) { $0 + $1.0 * $1.1 }
        let delta = anchor.map { NormAnchor.anchoredDelta(m0: opt.m0, delta: opt.delta, anchor: $0) } ?? opt.delta
        let r = delta.map { $0 / denom }
        let wNorm = statistics.weightNorm ?? mlpOutputNorm(layer: layer)
        let rNorm = sqrt(r.reduce(Double(0)) { $0 + Double($1) * Double($1) })
        return RankOneUpdate(layer: layer, r: r, u: u, relativeSize: Float(rNorm / wNorm), optimization: opt, denominator: denom,
                             key: kMean, anchoredDelta: anchor == nil ? nil : delta)
    }
}
