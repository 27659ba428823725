import Foundation
import Testing
@testable import WilKE

/// One ROME optimisation problem at token level: rewriting rows whose last |target| positions predict the
/// target tokens, a KL row, and the subject's last token per row (where δ is added).
struct RomeProblem {
    let model: TransformerModel
    /// rewriting rows, then the KL row
    let rows: [[Int]]
    let subjects: [Int]
    let targets: [Int]
    let klFactor: Float, weightDecay: Float

    var rewriting: Range<Int> { 0..<(rows.count - 1) }
    var klIndex: Int { rows.count - 1 }
    var at: [TokenPosition] { subjects.enumerated().map { TokenPosition(row: $0, pos: $1) } }

    /// Label positions of every rewriting row, then the KL row's subject position.
    var logitsAt: [TokenPosition] {
        rewriting.flatMap { r in (0..<targets.count).map { TokenPosition(row: r, pos: rows[r].count - targets.count + $0) } }
            + [TokenPosition(row: klIndex, pos: subjects[klIndex])]
    }
    var labels: [[RomeLoss.Label]] {
        rewriting.map { r in targets.enumerated().map { RomeLoss.Label(logitsRow: r * targets.count + $0, token: $1) } }
    }

    /// A plain forward of the whole rows, δ on layer `layer`'s MLP output or on the residual after it.
    func fullBatch(_ delta: [Float], layer: Int, mlp: Bool) -> ForwardBatch {
        var b = ForwardBatch(sequences: rows, logitsAt: logitsAt)
        let d = Intervention(layer: layer, vector: delta, at: at)
        if mlp { b.mlpDelta = d } else { b.residualDelta = d }
        return b
    }

    /// The §8 form: the K/V of positions before each subject and the residual entering layer + 1 are cached
    /// once (`base`); each step recomputes only positions ≥ the subject, with δ on the resumed residual.
    func fastBatch(_ delta: [Float], layer: Int, base: ForwardResult) -> ForwardBatch {
        var b = ForwardBatch(sequences: rows.indices.map { Array(rows[$0][subjects[$0]...]) }, logitsAt: logitsAt)
        b.prefixes = rows.indices.map { base.kv[$0].prefix(subjects[$0]) }
        b.resume = base.residual!.suffix(from: subjects)
        b.residualDelta = Intervention(layer: layer, vector: delta, at: at)
        return b
    }

    /// What `fastBatch` needs, computed once per layer.
    func base(layer: Int) throws -> ForwardResult {
        var b = ForwardBatch(sequences: rows)
        b.returnKV = true
        b.cacheResidualAt = layer + 1
        return try model.forward(b)
    }

    /// RMS of the residual after block `layer` at row 0's subject: the finite-difference step scales with it
    /// (f32 noise over a tiny step would swamp gradients that the norms make small on large residuals).
    func residualRMS(after layer: Int) throws -> Float {
        var b = ForwardBatch(sequences: rows)
        b.cacheResidualAt = layer + 1
        let res = try model.forward(b).residual!
        let c = model.config.dModel, x = res.values[(subjects[0] * c)..<((subjects[0] + 1) * c)]
        return sqrtf(x.reduce(0) { $0 + $1 * $1 } / Float(c))
    }

    /// m₀ (MLP output of `layer` at row 0's subject) and log P₀ at the KL position, both at δ = 0.
    func reference(layer: Int) throws -> (m0Norm: Float, logP0: [Float]) {
        var b = ForwardBatch(sequences: rows, logitsAt: logitsAt)
        b.tapLayers = [layer]
        b.taps = [at[0]]
        let out = try model.forward(b)
        let m0 = out.mlpOut[layer]![0]
        return (sqrtf(m0.reduce(0) { $0 + $1 * $1 }), RomeLoss.logSoftmax(out.logits.last!))
    }

    func evaluate(_ logits: [[Float]], _ delta: [Float], _ ref: (m0Norm: Float, logP0: [Float]),
                  kl: Bool = true) throws -> RomeLoss.Evaluation {
        try RomeLoss.evaluate(logits: logits, labels: labels, klRow: kl ? logitsAt.count - 1 : nil, logP0: kl ? ref.logP0 : nil,
                              delta: delta, m0Norm: ref.m0Norm, klFactor: klFactor, weightDecay: weightDecay)
    }

    func loss(_ batch: ForwardBatch, _ delta: [Float], _ ref: (m0Norm: Float, logP0: [Float])) throws -> RomeLoss.Terms {
        try evaluate(model.forward(batch).logits, delta, ref).terms
    }

    /// Total loss and dTotal/dδ: forward with tape, loss, backward to the residual after `layer`, plus dWD/dδ.
    func gradient(_ batch: ForwardBatch, _ delta: [Float], _ ref: (m0Norm: Float, logP0: [Float]), layer: Int,
                  kl: Bool = true) throws -> (terms: RomeLoss.Terms, grad: [Float]) {
        let (out, tape) = try model.forwardForBackward(batch)
        let e = try evaluate(out.logits, delta, ref, kl: kl)
        let g = try model.deltaGradient(tape, dLogits: e.dLogits, layer: layer, at: at)
        return (e.terms, zip(g, e.dDelta).map { $0 + $1 })
    }
}

/// Whole-model dLoss/dδ (ROME's loss) against central finite differences on every fixture architecture.
@Suite struct BackwardModelTests {
    func problem(_ fx: FixtureModel) throws -> RomeProblem {
        let r = try fx.rows
        return RomeProblem(model: fx.model, rows: [r[0], r[1], Array(r[2].prefix(6))], subjects: [3, 1, 2],
                           targets: [7, 42], klFactor: 0.0625, weightDecay: 0.5)
    }

    /// Central differences with one Richardson step, (4·D(h/2) − D(h)) / 3, so the O(h²) truncation error
    /// (large for f32-sized steps through norms and softmaxes) does not swamp the comparison.
    func finiteDifferences(_ p: RomeProblem, _ delta: [Float], _ ref: (m0Norm: Float, logP0: [Float]), eps: Float,
                           _ batch: ([Float]) -> ForwardBatch) throws -> [Float] {
        func central(_ i: Int, _ h: Float) throws -> Double {
            var plus = delta, minus = delta
            plus[i] += h; minus[i] -= h
            let diff = Double(try p.loss(batch(plus), plus, ref).total) - Double(try p.loss(batch(minus), minus, ref).total)
            return diff / Double(plus[i] - minus[i])
        }
        return try delta.indices.map { i in Float((4 * (try central(i, eps / 2)) - (try central(i, eps))) / 3) }
    }

    /// δ on layer 0's MLP output and on the residual after block 0, plain and cached forms, at δ = 0 and at a
    /// random δ of norm ‖m₀‖ (where the KL and weight-decay terms are active).
    @Test(arguments: fixtureArchs) func deltaGradientMatchesFiniteDifferences(arch: String) throws {
        let fx = try FixtureModel(arch)
        let p = try problem(fx)
        let ref = try p.reference(layer: 0)
        let base = try p.base(layer: 0)
        let random = noise(fx.config.dModel, seed: 5)
        let scale = ref.m0Norm / sqrtf(random.reduce(0) { $0 + $1 * $1 })
        for delta in [[Float](repeating: 0, count: fx.config.dModel), random.map { $0 * scale }] {
            let forms: [(String, ([Float]) -> ForwardBatch)] = [
                ("full mlp", { p.fullBatch($0, layer: 0, mlp: true) }),
                ("full residual", { p.fullBatch($0, layer: 0, mlp: false) }),
                ("cached", { p.fastBatch($0, layer: 0, base: base) }),
            ]
            var grads: [[Float]] = []
            for (name, make) in forms {
                let g = try p.gradient(make(delta), delta, ref, layer: 0).grad
                let numeric = try finiteDifferences(p, delta, ref, eps: 0.15 * p.residualRMS(after: 0), make)
                let e = relativeL2(g, numeric)
                print("\(arch) \(name) |δ|=\(delta.contains { $0 != 0 } ? "m0" : "0"): dLoss/dδ vs finite differences relative error \(e)")
                #expect(e < 1e-3, "\(arch) \(name): \(e)")
                grads.append(g)
            }
            let agree = grads.dropFirst().map { relativeError($0, grads[0]) }.max()!
            print("\(arch) plain vs cached forms max relative diff \(agree)")
            #expect(agree < 1e-5)
        }
    }

    /// A step that recycles the previous step's tape gives bit-identical results to a fresh tape.
    @Test(arguments: fixtureArchs) func recycledTapeEqualsFreshTape(arch: String) throws {
        let fx = try FixtureModel(arch)
        let p = try problem(fx)
        let ref = try p.reference(layer: 0)
        let base = try p.base(layer: 0)
        let d1 = noise(fx.config.dModel, seed: 8), d2 = noise(fx.config.dModel, seed: 9)
        let first = try fx.model.forwardForBackward(p.fastBatch(d1, layer: 0, base: base)).tape
        let (reusedOut, reused) = try fx.model.forwardForBackward(p.fastBatch(d2, layer: 0, base: base), reusing: first)
        let (freshOut, fresh) = try fx.model.forwardForBackward(p.fastBatch(d2, layer: 0, base: base))
        #expect(reusedOut.logits == freshOut.logits)
        let e = try p.evaluate(freshOut.logits, d2, ref)
        let g1 = try fx.model.deltaGradient(reused, dLogits: e.dLogits, layer: 0, at: p.at)
        let g2 = try fx.model.deltaGradient(fresh, dLogits: e.dLogits, layer: 0, at: p.at)
        #expect(g1 == g2)
    }

    /// A lean tape (block inputs only, each block recomputed in the backward) gives the same logits and
    /// bit-identical gradients after every block as the full tape: δ on layer 0's MLP output (the
    /// recomputed block must re-add it), and the cached form resumed above layer 0.
    @Test(arguments: fixtureArchs) func leanTapeEqualsFullTape(arch: String) throws {
        let fx = try FixtureModel(arch)
        let p = try problem(fx)
        let ref = try p.reference(layer: 0)
        let delta = noise(fx.config.dModel, seed: 10).map { $0 * ref.m0Norm / 4 }
        let batches = [p.fullBatch(delta, layer: 0, mlp: true), p.fastBatch(delta, layer: 0, base: try p.base(layer: 0))]
        for (i, batch) in batches.enumerated() {
            let (fullOut, full) = try fx.model.forwardForBackward(batch, lean: false)
            let (leanOut, lean) = try fx.model.forwardForBackward(batch, lean: true)
            #expect(full.trace.count > 0 && lean.trace.isEmpty && lean.inputs.count == full.trace.count)
            #expect(leanOut.logits == fullOut.logits)
            let e = try p.evaluate(fullOut.logits, delta, ref)
            let layers = Array((i == 0 ? -1 : 0)..<fx.config.nLayer)
            let g1 = try fx.model.backward(full, dLogits: e.dLogits, afterLayers: layers, at: p.at)
            let g2 = try fx.model.backward(lean, dLogits: e.dLogits, afterLayers: layers, at: p.at)
            for l in layers { #expect(g1[l]! == g2[l]!, "\(arch) batch \(i) layer \(l)") }
        }
    }

    /// The residual after every block (−1 = embedding output) in one backward pass, each against finite
    /// differences of a probe δ′ added there (δ itself stays on layer 0's MLP output; no weight decay, so
    /// the loss depends on the logits only); then the cached form resumed above every layer, including
    /// resuming at the final norm (no block computed).
    @Test(arguments: fixtureArchs) func everyLayerMatchesFiniteDifferences(arch: String) throws {
        let fx = try FixtureModel(arch)
        let p0 = try problem(fx)
        let p = RomeProblem(model: p0.model, rows: p0.rows, subjects: p0.subjects, targets: p0.targets,
                            klFactor: p0.klFactor, weightDecay: 0)
        let ref = try p.reference(layer: 0)
        let c = fx.config.dModel
        let delta = noise(c, seed: 6).map { $0 * ref.m0Norm / 4 }, zero = [Float](repeating: 0, count: c)
        let layers = Array(-1..<fx.config.nLayer), top = fx.config.nLayer - 1
        // Larger relative steps at the top where gradients are smallest (noise ∝ 1/step, truncation is O(step⁴)).
        func step(_ l: Int) -> Float { l == top ? 0.3 : 0.15 }
        let (out, tape) = try fx.model.forwardForBackward(p.fullBatch(delta, layer: 0, mlp: true))
        let e = try p.evaluate(out.logits, delta, ref)
        let all = try fx.model.backward(tape, dLogits: e.dLogits, afterLayers: layers, at: p.at)
        for l in layers {
            let g = all[l]!.reduce(zero) { zip($0, $1).map { $0 + $1 } }
            let numeric = try finiteDifferences(p, zero, ref, eps: step(l) * p.residualRMS(after: l)) { probe in
                var b = p.fullBatch(delta, layer: 0, mlp: true)
                b.residualDelta = Intervention(layer: l, vector: probe, at: p.at)
                return b
            }
            let err = relativeL2(g, numeric)
            print("\(arch) residual after block \(l): relative error \(err)")
            // At the top, the probe's gradient is ~1e-3 of the loss (the final norm divides by a large
            // residual), so the f32 rounding of the loss itself limits the finite differences to ~1e-3.
            #expect(err < (l == top ? 3e-3 : 1e-3), "\(arch) layer \(l): \(err)")
        }
        for l in 0..<fx.config.nLayer {
            let base = try p0.base(layer: l)
            let ref0 = try p0.reference(layer: 0)
            let g = try p0.gradient(p0.fastBatch(delta, layer: l, base: base), delta, ref0, layer: l).grad
            let numeric = try finiteDifferences(p0, delta, ref0, eps: step(l) * p0.residualRMS(after: l)) { p0.fastBatch($0, layer: l, base: base) }
            let err = relativeL2(g, numeric)
            print("\(arch) cached form resumed at layer \(l + 1): relative error \(err)")
            #expect(err < 1e-3, "\(arch) cached layer \(l): \(err)")
        }
    }
}
