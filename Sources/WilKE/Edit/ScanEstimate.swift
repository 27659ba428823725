import Foundation

/// How WilKE picks its layer (`--scan`).
public enum ScanMode: String, Codable, Sendable, CaseIterable {
    /// Rank every candidate by the estimate LA_est(l) from one pass at δ = 0, optimize only the best
    /// (and those of the `scanTop` best within `scanMargin` of it) and take the exact argmin among them.
    case fast
    /// The paper's scan: optimize δ at every candidate layer and take the exact argmin.
    case full
}

/// What every candidate layer of a scan shares, computed once per edit instead of once per layer
/// (ALGORITHM.md §8): the δ = 0 pass over the compute_v rows (its KV caches, the residual stream above
/// each candidate, m₀, P₀), the loss gradient with respect to each candidate's MLP output, and the keys.
public struct SharedScanPass: Sendable {
    /// Per compute_v row: keys/values of every layer for the whole row at δ = 0.
    let kv: [KVCache]
    /// Per candidate layer l: the residual stream the δ loop resumes from (all rows, all positions), the one
    /// entering layer l+1 (layer l when the MLP output is normed, `ModelConfig.normsMLPOutput`).
    let residuals: [Int: ResidualCache]
    /// Per candidate layer: m₀ [C], its MLP output at (row 0, the subject's last token).
    let m0: [Int: [Float]]
    /// [V] log P₀ at the KL position.
    let logP0: [Float]
    /// The loss at δ = 0 (the same for every layer: the model is unchanged).
    public let loss: RomeLoss.Terms
    /// Per candidate layer: g_l = dLoss/dδ_l at δ = 0 [C], δ_l being the vector added to layer l's MLP
    /// output at the subject's last token of every row (summed over the rows, as δ is shared).
    public let gradients: [Int: [Float]]
    /// Per candidate layer: k̄ [F] (mean over the templates) and k_c [F] (bare prompt).
    public let keys: [Int: (mean: [Float], bare: [Float])]
    /// Per candidate layer l: ‖h_{l+1}‖, the norm of the residual stream leaving block l at (row 0, the
    /// subject's last token), the stream δ_l is added to.
    public let streamNorms: [Int: Float]

    /// The start of layer l's δ optimization, as `optimizeDelta` would compute it itself.
    func start(layer l: Int) -> DeltaStart? {
        guard let residual = residuals[l], let m0 = m0[l] else { return nil }
        return DeltaStart(kv: kv, residual: residual, m0: m0, logP0: logP0)
    }
}

/// The δ = 0 quantities `optimizeDelta` needs before its first step.
struct DeltaStart: Sendable {
    /// Per row, the whole row's KV cache; residual: entering layer l+1 (l when the MLP output is normed), all positions.
    var kv: [KVCache], residual: ResidualCache
    var m0: [Float], logP0: [Float]
    /// The MLP output at (row 0, the subject's last token) when it is not m₀ (MEMIT's residual site).
    var mlpOutput: [Float]? = nil
}

/// One layer's estimate of WilKE's LA(l) (docs/ALGORITHM_NOTES.md, "Fast scan").
public struct LayerEstimate: Sendable, Equatable {
    public var layer: Int
    /// LA_est(l) = min(e^2.19 · ‖h_{l+1}‖^½, clamp · ‖m₀,l‖) · ‖C⁻¹k̄‖ / (|k · C⁻¹k̄| · ‖W_l‖_F), k = k_c (or
    /// k̄ with averaged keys): ROME's exact LA with ‖δ_l‖ replaced by its measured law ‖δ_l‖ ≈ e^2.19 ‖h_{l+1}‖^½
    /// (docs/ALGORITHM_NOTES.md, "Fast scan": ROME's 20 Adam steps stop on their step budget, not at a
    /// loss, so the first-order ‖δ_l‖ ∝ 1/‖g_l‖ does not hold), bounded by the clamp ROME applies to δ.
    /// Only its order across layers means something.
    public var estimate: Float
    /// ‖h_{l+1}‖, |k · û| (ROME's denominator) and ‖W_l‖_F, the three factors.
    public var streamNorm: Float, denominator: Float, weightNorm: Float
    /// ‖g_l‖, the first-order estimate 1 / (‖g_l‖ · |k · û| · ‖W_l‖_F) it replaces, for diagnosis.
    public var gradientNorm: Float, firstOrder: Float
    /// ‖g_l‖₁ and ‖m₀,l‖ (what Adam's sign-like first steps and the clamp / weight decay respond to), for
    /// diagnosis (`wilke dev estimates`).
    public var gradientL1: Float, m0Norm: Float
}

extension TransformerModel {
    /// One forward + backward pass at δ = 0 over the compute_v rows and one forward over the key rows,
    /// for all of `layers` at once: the residual stream passes through every layer, so a single backward
    /// yields dLoss/dδ_l for each of them.
    public func sharedScanPass(_ inputs: RomeInputs, layers: [Int], _ hp: EditHyperparameters) throws -> SharedScanPass {
        for l in layers where l < 0 || l >= config.nLayer { throw WilKEError.invalidLayer(l) }
        let c = config.dModel
        var full = ForwardBatch(sequences: inputs.rows, logitsAt: inputs.logitsAt)
        full.returnKV = true
        full.tapLayers = layers
        full.taps = [TokenPosition(row: 0, pos: inputs.subjectIndex[0])]
        let (result, tape) = try forwardForBackward(full)
        // P₀ from a head call on the KL row alone, as `optimizeDelta`'s own δ = 0 pass computes it.
        let klRow = tape.logitRows[inputs.klLogitsRow]
        let logP0 = RomeLoss.logSoftmax(head(tape.final, rows: [klRow])[0])
        // At δ = 0 the KL term and its gradient vanish (P_δ = P₀) and so does the weight decay's.
        let eval = try RomeLoss.evaluate(logits: result.logits, labels: inputs.labels, klRow: inputs.klLogitsRow,
                                         logP0: logP0, delta: [Float](repeating: 0, count: c), m0Norm: 1,
                                         klFactor: hp.klFactor, weightDecay: hp.weightDecay)
        let at = inputs.subjectIndex.enumerated().map { TokenPosition(row: $0, pos: $1) }
        let perRow = try backward(tape, dLogits: eval.dLogits, afterLayers: layers, at: at)
        var gradients: [Int: [Float]] = [:], residuals: [Int: ResidualCache] = [:], m0: [Int: [Float]] = [:]
        var streams: [Int: Float] = [:]
        let tap = try tape.pack.index(TokenPosition(row: 0, pos: inputs.subjectIndex[0]))
        for l in layers {
            var g = [Float](repeating: 0, count: c)
            for r in try mlpOutputGradients(tape, layer: l, residual: perRow[l] ?? [], at: at) { for j in 0..<c { g[j] += r[j] } }
            gradients[l] = g
            // The block input of layer l+1 is block l's output; above the last block, the final residual.
            let x = l + 1 < config.nLayer ? tape.blockInput(l + 1) : tape.final
            let resume = config.normsMLPOutput ? l : l + 1
            residuals[l] = tape.pack.residual(layer: resume, resume == l ? tape.blockInput(l) : x, width: c)
            streams[l] = Self.euclideanNorm(x.row(tap, width: c))
            guard let m = result.mlpOut[l]?.first else { throw WilKEError.invalidBatch("the δ = 0 pass has no tap at layer \(l)") }
            m0[l] = m
        }
        return SharedScanPass(kv: result.kv, residuals: residuals, m0: m0, logP0: logP0, loss: eval.terms,
                              gradients: gradients, keys: try subjectKeys(inputs, layers: layers), streamNorms: streams)
    }

    /// `subjectKeys` for several layers from one forward pass (taps do not change the arithmetic).
    public func subjectKeys(_ inputs: RomeInputs, layers: [Int]) throws -> [Int: (mean: [Float], bare: [Float])] {
        var b = ForwardBatch(sequences: inputs.keyRows, logitsAt: [])
        b.tapLayers = layers
        b.taps = inputs.keyIndex.enumerated().map { TokenPosition(row: $0, pos: $1) }
        let out = try forward(b)
        var keys: [Int: (mean: [Float], bare: [Float])] = [:]
        for l in layers {
            guard let rows = out.keys[l], let bare = rows.first else { throw WilKEError.invalidLayer(l) }
            keys[l] = (Self.meanKey(rows), bare)
        }
        return keys
    }

    /// The plain mean of the template keys (ROME's k̄). - rows: each [F]
    static func meanKey(_ rows: [[Float]]) -> [Float] {
        var mean = [Float](repeating: 0, count: rows[0].count)
        for k in rows { for j in mean.indices { mean[j] += k[j] } }
        for j in mean.indices { mean[j] /= Float(rows.count) }
        return mean
    }

    /// LA_est(l) for every layer of the shared pass, on the current weights (so an inflated ‖W_l‖_F
    /// lowers the estimate exactly as it lowers the exact LA).
    /// - covariance: the solve C_l x = k per layer (nil: C = I).
    public func layerEstimates(_ shared: SharedScanPass, layers: [Int], _ hp: EditHyperparameters,
                               covariance: [CovarianceSolve?]) throws -> [LayerEstimate] {
        try layerEstimates(shared, layers: layers, hp, statistics: covariance.map { LayerKeyStatistics(solve: $0) })
    }

    /// `layerEstimates` with each layer's full statistics: with a null space, û is the projected direction,
    /// so the estimate ranks the layers by the projected update's LA.
    public func layerEstimates(_ shared: SharedScanPass, layers: [Int], _ hp: EditHyperparameters,
                               statistics: [LayerKeyStatistics]) throws -> [LayerEstimate] {
        precondition(statistics.count == layers.count)
        return try zip(layers, statistics).map { l, st in
            guard let g = shared.gradients[l], let keys = shared.keys[l] else { throw WilKEError.invalidLayer(l) }
            let u = try updateDirection(keys.mean, layer: l, hp, statistics: st)
            let key = hp.averagedKeys ? keys.mean : keys.bare
            let denom = abs(zip(key, u).reduce(Float(0)) { $0 + $1.0 * $1.1 })
            let gNorm = Self.euclideanNorm(g)
            let wNorm = Float(st.weightNorm ?? mlpOutputNorm(layer: l))  // from the stored weight, no dense copy
            let h = shared.streamNorms[l] ?? 0
            // A zero gradient (a layer the loss cannot see) or a zero denominator can carry no edit.
            let usable = gNorm > 0 && denom > 0 && wNorm > 0
            let m0Norm = Self.euclideanNorm(shared.m0[l] ?? [])
            let delta = min(Self.deltaLawScale * h.squareRoot(), hp.clampNormFactor * m0Norm)
            let est = usable && delta > 0 ? delta / (denom * wNorm) : .infinity
            let firstOrder = usable ? 1 / (gNorm * denom * wNorm) : .infinity
            return LayerEstimate(layer: l, estimate: est, streamNorm: h, denominator: denom, weightNorm: wNorm,
                                 gradientNorm: gNorm, firstOrder: firstOrder,
                                 gradientL1: Float(g.reduce(0.0) { $0 + Double(abs($1)) }), m0Norm: m0Norm)
        }
    }
}

extension TransformerModel {
    /// e^2.19, the constant of the law log ‖δ_l‖ = 2.19 + ½ log ‖h_{l+1}‖ fitted on SmolLM2's 8 fit facts.
    /// It was free while the law alone ranked the layers; against the clamp bound it sets where the law
    /// gives way: on SmolLM2 (clamp 4) at 52 of 450 layer-facts, on Gemma 3 (clamp 1, h in the
    /// thousands) at every layer (docs/ALGORITHM_NOTES.md, "The clamp bound").
    static let deltaLawScale: Float = 8.935

    /// ‖v‖, summed in Double (the estimate's factors come from vectors of up to 14,336 floats).
    static func euclideanNorm(_ v: [Float]) -> Float { Float(sqrt(v.reduce(0.0) { $0 + Double($1) * Double($1) })) }
}

extension LayerEstimate {
    /// Of the `count` layers with the smallest estimates (ties: the lower layer), the best and each whose
    /// estimate is at most `margin` times the best's (nil: all `count`), in layer order.
    public static func top(_ estimates: [LayerEstimate], count: Int, margin: Float? = nil) -> [Int] {
        let ranked = estimates.sorted { ($0.estimate, $0.layer) < ($1.estimate, $1.layer) }.prefix(max(1, count))
        guard let best = ranked.first?.estimate else { return [] }
        let kept = margin.map { m in ranked.filter { $0.estimate <= m * best } } ?? Array(ranked)
        return kept.map(\.layer).sorted()
    }
}
