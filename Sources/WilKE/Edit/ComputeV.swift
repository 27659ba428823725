import Foundation

/// ROME's compute_v (ALGORITHM.md §2.3): the vector δ added to layer l's MLP output at the subject's
/// last token of every row that makes the model produce the target, found with Adam. MEMIT's compute_z
/// (§3.1) is the same loop with m₀ read from the residual output of block l instead (`DeltaSite`).
///
/// Done with less work than the reference (§8): one full pass at δ = 0 caches each row's keys/values
/// before its subject token and the residual stream entering layer l+1; every step then recomputes only
/// the layers above l at positions ≥ the subject token, with logits only where the loss looks. (Gemma 3's
/// ROME site lies before a norm: there the cache is the stream entering layer l, which is recomputed.)
public struct DeltaOptimization: Sendable {
    public var layer: Int
    /// δ [C] and v* = m₀ + δ (MEMIT's z).
    public var delta: [Float]
    public var m0: [Float]
    public var vStar: [Float] { zip(m0, delta).map(+) }
    /// Loss terms per forward pass (the last entry is the final δ's).
    public var losses: [RomeLoss.Terms]
    public var adamSteps: Int
    /// Layer l's MLP output at (row 0, the subject's last token) at δ = 0 [C]: m₀ itself for ROME, the
    /// MLP part of h^l for MEMIT (NAS anchors the MLP-level v* = this + δ in both).
    public var mlpOutput: [Float] = []
}

/// What m₀ (`target_init`, the vector the weight decay and the clamp are relative to) is. Either way δ
/// lands in the residual stream after block l at the subject token, so the optimization is the same.
public enum DeltaSite: Sendable {
    /// ROME / WilKE: layer l's MLP output.
    case mlpOutput
    /// MEMIT: the residual stream after block l (h^l).
    case residual
}

extension TransformerModel {
    public func optimizeDelta(_ inputs: RomeInputs, layer: Int, _ hp: EditHyperparameters,
                              site: DeltaSite = .mlpOutput) throws -> DeltaOptimization {
        try optimizeDelta(inputs, layer: layer, hp, site: site, start: nil)
    }

    /// - start: the δ = 0 pass, if a scan computed it once for all its layers (`SharedScanPass`); only
    ///   for `site: .mlpOutput`. The optimization is the same either way.
    func optimizeDelta(_ inputs: RomeInputs, layer: Int, _ hp: EditHyperparameters,
                       site: DeltaSite = .mlpOutput, start: DeltaStart?) throws -> DeltaOptimization {
        guard layer >= 0, layer < config.nLayer else { throw WilKEError.invalidLayer(layer) }
        precondition(start == nil || site == .mlpOutput, "a shared start holds MLP outputs")
        // Gemma 3 norms the MLP output before adding it to the residual: there δ cannot ride on the resumed
        // residual, so the steps resume at layer l itself and add δ to its MLP output (one more layer).
        let throughNorm = site == .mlpOutput && config.normsMLPOutput
        let begin = try start ?? deltaStart(inputs, layer: layer, site: site)
        let (m0, logP0, residual) = (begin.m0, begin.logP0, begin.residual)
        let m0Norm = sqrt(m0.reduce(0) { $0 + $1 * $1 })

        // The step batch: layers > l, positions ≥ the subject token, δ on the resumed residual.
        let at = inputs.subjectIndex.enumerated().map { TokenPosition(row: $0, pos: $1) }
        var step = ForwardBatch(sequences: zip(inputs.rows, inputs.subjectIndex).map { Array($0[$1...]) },
                                logitsAt: inputs.logitsAt)
        step.prefixes = zip(begin.kv, inputs.subjectIndex).map { $0.prefix($1) }
        step.resume = residual.suffix(from: inputs.subjectIndex)

        var delta = [Float](repeating: 0, count: config.dModel)
        var adam = Adam(count: delta.count, learningRate: hp.learningRate)
        var losses: [RomeLoss.Terms] = []
        var updates = 0
        var previous: ForwardTape?
        for it in 0..<max(1, hp.steps) {
            let d = Intervention(layer: layer, vector: delta, at: at)
            if throughNorm { step.mlpDelta = d } else { step.residualDelta = d }
            // Reusing the last step's activation buffers saves ~200 MB of allocation per step on SmolLM2.
            let (result, tape) = try forwardForBackward(step, reusing: previous)
            previous = tape
            let eval = try RomeLoss.evaluate(logits: result.logits, labels: inputs.labels, klRow: inputs.klLogitsRow,
                                             logP0: logP0, delta: delta, m0Norm: m0Norm, klFactor: hp.klFactor,
                                             weightDecay: hp.weightDecay)
            losses.append(eval.terms)
            // The reference checks before updating, and its last pass only evaluates.
            if eval.terms.total < hp.earlyStopLoss || it == hp.steps - 1 { break }
            var grad = try deltaGradient(tape, dLogits: eval.dLogits, layer: layer, at: at, site: site)
            for j in grad.indices { grad[j] += eval.dDelta[j] }
            adam.step(&delta, grad)
            updates += 1
            let limit = hp.clampNormFactor * m0Norm
            let norm = sqrt(delta.reduce(0) { $0 + $1 * $1 })
            if norm > limit { for j in delta.indices { delta[j] *= limit / norm } }
        }
        return DeltaOptimization(layer: layer, delta: delta, m0: m0, losses: losses, adamSteps: updates, mlpOutput: begin.mlpOutput ?? m0)
    }

    /// The δ = 0 pass of one layer: caches, m₀ at (row 0, idx₀), and P₀ at the KL position.
    private func deltaStart(_ inputs: RomeInputs, layer: Int, site: DeltaSite) throws -> DeltaStart {
        var full = ForwardBatch(sequences: inputs.rows, logitsAt: [inputs.logitsAt[inputs.klLogitsRow]])
        full.returnKV = true
        full.cacheResidualAt = site == .mlpOutput && config.normsMLPOutput ? layer : layer + 1
        full.tapLayers = [layer]
        full.taps = [TokenPosition(row: 0, pos: inputs.subjectIndex[0])]
        let base = try forward(full)
        guard let residual = base.residual, let mlpOut = base.mlpOut[layer]?.first else {
            throw WilKEError.invalidBatch("the δ = 0 pass returned no residual cache")
        }
        let m0: [Float]
        switch site {
        case .mlpOutput: m0 = mlpOut
        case .residual: // row 0 is packed first and starts at position 0
            let (c, i) = (config.dModel, inputs.subjectIndex[0])
            m0 = Array(residual.values[i * c ..< (i + 1) * c])
        }
        return DeltaStart(kv: base.kv, residual: residual, m0: m0, logP0: RomeLoss.logSoftmax(base.logits[0]), mlpOutput: mlpOut)
    }
}

/// torch.optim.Adam with betas (0.9, 0.999), eps 1e-8, no weight decay.
struct Adam {
    var m: [Float], v: [Float], t = 0
    let lr: Float, beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-8

    init(count: Int, learningRate: Float) {
        m = [Float](repeating: 0, count: count); v = m; lr = learningRate
    }

    mutating func step(_ x: inout [Float], _ g: [Float]) {
        t += 1
        let bc1 = 1 - pow(beta1, Float(t)), bc2 = 1 - pow(beta2, Float(t))
        for i in x.indices {
            m[i] = beta1 * m[i] + (1 - beta1) * g[i]
            v[i] = beta2 * v[i] + (1 - beta2) * g[i] * g[i]
            // torch: denom = sqrt(v)/sqrt(bc2) + eps; x -= lr/bc1 · m/denom
            x[i] -= lr / bc1 * m[i] / (v[i].squareRoot() / bc2.squareRoot() + eps)
        }
    }
}
