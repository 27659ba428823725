import Foundation

/// One layer's share of a MEMIT edit (ALGORITHM.md §3.1) for one request: ΔW_l = R_l xᵀ on the logical
/// W_down [C, F], with x = (λC_l + k̄k̄ᵀ)⁻¹k̄ (the reference's `adj_k`, here one column).
public struct MemitLayerStep: Sendable {
    public var layer: Int
    /// k̄_l [F]: the mean of the template groups' mean keys at the subject's last token (compute_ks).
    public var key: [Float]
    /// H [C]: h^L at the bare prompt's subject token, on the model as updated for the earlier layers.
    public var h: [Float]
    /// R_l = (z − H) / (|layers| − i) [C]: the left factor (rows of W).
    public var residual: [Float]
    /// x = (λC_l + k̄k̄ᵀ)⁻¹k̄ [F]: the right factor (columns of W).
    public var right: [Float]
    /// ‖ΔW_l‖_F / ‖W_l‖_F (W before the update).
    public var relativeSize: Float
    /// ‖m_L + δ‖: the solved MLP-level v* at L before any norm anchor (the same for every layer's step).
    public var valueNorm: Float = 0
}

/// A whole MEMIT edit: z at L = layers.last, then the spread.
public struct MemitUpdate: Sendable {
    public var layers: [Int]
    /// δ on h^L; `optimization.vStar` is the solved z [C], `optimization.m0` is h^L before the edit.
    public var optimization: DeltaOptimization
    /// The target z [C]: `optimization.vStar`, or with a norm anchor h^L − m + ν·(m + δ)/‖m + δ‖.
    public var z: [Float]
    public var steps: [MemitLayerStep]
    /// h^L at the bare prompt's subject token after every layer's update [C].
    public var hAfter: [Float]
}

extension TransformerModel {
    /// MEMIT for one request (kmeng01/memit execute_memit): z = h^L + δ with δ from ROME's loop on the
    /// residual after block L (clamped at `memitClampNormFactor`·‖h^L‖), then for each layer in ascending
    /// order, on the model as already updated for the earlier ones: k̄_l, H, R_l = (z − H)/(n − i) and
    /// ΔW_l = R_l xᵀ, handed to `apply`.
    ///
    /// λC + k̄k̄ᵀ is never formed: by Sherman–Morrison, (λC + kkᵀ)⁻¹k = C⁻¹k / (λ + kᵀC⁻¹k), one C solve
    /// (the same Cholesky factor ROME uses) and a scalar, in f64. One request makes every step rank one.
    /// - Parameters:
    ///   - layers: strictly ascending, inside the model
    ///   - templateGroups: sizes of consecutive groups of `inputs.keyRows` (MEMIT: [1, 5], "{}" then the
    ///     generated contexts); k̄ is the plain mean of the groups' mean keys
    ///   - covariance: C_l x = k solver per layer (nil, or `hp.useCovariance` false: C = I)
    ///   - apply: writes ΔW_l = step.residual ⊗ step.right into layer l's W_down of THIS model before returning
    public func memitUpdate(_ inputs: RomeInputs, layers: [Int], templateGroups: [Int], _ hp: EditHyperparameters,
                            covariance: (Int) throws -> CovarianceSolve?,
                            apply: (MemitLayerStep) throws -> Void) throws -> MemitUpdate {
        try memitUpdate(inputs, layers: layers, templateGroups: templateGroups, hp,
                        statistics: { LayerKeyStatistics(solve: try covariance($0)) }, apply: apply)
    }

    /// `memitUpdate` with each layer's full statistics: with a null space it is AlphaEdit (ALGORITHM.md
    /// §3.2) for one request, x = Û z / (1 + aᵀz), z = M⁻¹a, a = Ûᵀk̄, M = Σ_p b_p b_pᵀ + L2·I, in place of
    /// (λC + k̄k̄ᵀ)⁻¹k̄; with `anchor`, NAS rescales the MLP-level v* = m_L + δ to that norm (z = h^L − m_L + v*').
    public func memitUpdate(_ inputs: RomeInputs, layers: [Int], templateGroups: [Int], _ hp: EditHyperparameters,
                            statistics: (Int) throws -> LayerKeyStatistics, anchor: Float? = nil,
                            apply: (MemitLayerStep) throws -> Void) throws -> MemitUpdate {
        guard let zLayer = layers.last else { throw WilKEError.invalidRequest("memit needs at least one layer") }
        for l in layers where l < 0 || l >= config.nLayer { throw WilKEError.invalidLayer(l) }
        guard zip(layers, layers.dropFirst()).allSatisfy({ $0 < $1 }) else {
            throw WilKEError.invalidRequest("memit layers must be strictly ascending, not \(layers)")
        }
        guard templateGroups.allSatisfy({ $0 > 0 }), templateGroups.reduce(0, +) == inputs.keyRows.count else {
            throw WilKEError.invalidRequest("template groups \(templateGroups) do not cover the \(inputs.keyRows.count) key rows")
        }
        var zhp = hp
        zhp.clampNormFactor = hp.memitClampNormFactor
        let opt = try optimizeDelta(inputs, layer: zLayer, zhp, site: .residual)
        let z = anchor.map { a in zip(opt.m0, NormAnchor.anchoredDelta(m0: opt.mlpOutput, delta: opt.delta, anchor: a)).map(+) } ?? opt.vStar
        var steps: [MemitLayerStep] = []
        for (i, l) in layers.enumerated() {
            let (key, h) = try memitKeys(inputs, layer: l, groups: templateGroups, zLayer: zLayer)
            let st = try statistics(l)
            let x: [Double]
            if let solved = try st.projectedSolve(key, layer: l), let ns = st.nullSpace {
                x = ns.vector(solved.z).map { $0 / (1 + solved.az) }
            } else {
                let cInvK: [Double] = try hp.useCovariance ? (st.solve?(key) ?? key.map(Double.init)) : key.map(Double.init)
                let kCk = zip(key, cInvK).reduce(0.0) { $0 + Double($1.0) * $1.1 }
                let denominator = hp.memitLambda + kCk
                guard denominator > 0, denominator.isFinite else {
                    throw WilKEError.singularCovariance(layer: l, reason: "λ + kᵀC⁻¹k is \(denominator)")
                }
                x = cInvK.map { $0 / denominator }
            }
            let share = Double(layers.count - i)
            let r = zip(z, h).map { (Double($0) - Double($1)) / share }
            let wNorm = mlpOutputNorm(layer: l)
            let size = r.reduce(0.0) { $0 + $1 * $1 }.squareRoot() * x.reduce(0.0) { $0 + $1 * $1 }.squareRoot() / wNorm
            let step = MemitLayerStep(layer: l, key: key, h: h, residual: r.map { Float($0) }, right: x.map { Float($0) },
                                      relativeSize: Float(size), valueNorm: NormAnchor.solvedNorm(opt))
            try apply(step)
            steps.append(step)
        }
        let hAfter = try memitKeys(inputs, layer: zLayer, groups: templateGroups, zLayer: zLayer).h
        return MemitUpdate(layers: layers, optimization: opt, z: z, steps: steps, hAfter: hAfter)
    }

    /// One pass over the key rows: k̄ at `layer` (mean of the groups' mean keys) and h^zLayer at the bare
    /// prompt's (key row 0's) subject token. Returns ([F], [C]).
    func memitKeys(_ inputs: RomeInputs, layer: Int, groups: [Int], zLayer: Int) throws -> (key: [Float], h: [Float]) {
        var b = ForwardBatch(sequences: inputs.keyRows, logitsAt: [])
        b.tapLayers = [layer]
        b.taps = inputs.keyIndex.enumerated().map { TokenPosition(row: $0, pos: $1) }
        b.cacheResidualAt = zLayer + 1
        let out = try forward(b)
        guard let keys = out.keys[layer], let residual = out.residual else { throw WilKEError.invalidLayer(layer) }
        var key = [Float](repeating: 0, count: config.dFF)
        var start = 0
        for n in groups {
            var mean = [Float](repeating: 0, count: key.count)
            for k in keys[start ..< start + n] { for j in mean.indices { mean[j] += k[j] } }
            for j in key.indices { key[j] += mean[j] / Float(n) }
            start += n
        }
        for j in key.indices { key[j] /= Float(groups.count) }
        // Row 0 is packed first and starts at position 0.
        let (c, idx) = (config.dModel, inputs.keyIndex[0])
        return (key, Array(residual.values[idx * c ..< (idx + 1) * c]))
    }
}
