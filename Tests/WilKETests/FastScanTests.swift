import Foundation
import Testing
@testable import WilKE

/// WilKE's fast scan on the tiny fixture models with the ROME fixtures' inputs and covariances: the
/// shared δ = 0 pass's gradients g_l against finite differences, its estimate's choice against the full
/// scan's exact argmin, and the optimizations it starts against the per-layer ones.
@Suite struct FastScanTests {
    /// The loss of the fixture's problem with `delta` added to layer `layer`'s MLP output at every row's
    /// subject token (the plain, uncached forward), P₀ taken at δ = 0.
    func loss(_ fx: FixtureModel, _ f: RomeEditFixtureTests.Fixture, layer: Int, delta: [Float], logP0: [Float]) throws -> Double {
        var b = ForwardBatch(sequences: f.inputs.rows, logitsAt: f.inputs.logitsAt)
        b.mlpDelta = Intervention(layer: layer, vector: delta,
                                  at: f.inputs.subjectIndex.enumerated().map { TokenPosition(row: $0, pos: $1) })
        let logits = try fx.model.forward(b).logits
        // The weight decay is left out: its gradient at δ = 0 is 0 (PyTorch's norm backward) but its
        // finite differences are not (|h|/h), and g_l is the gradient of the rest.
        return Double(try RomeLoss.evaluate(logits: logits, labels: f.inputs.labels, klRow: f.inputs.klLogitsRow, logP0: logP0,
                                            delta: delta, m0Norm: 1, klFactor: f.hp.klFactor, weightDecay: 0).terms.total)
    }

    @Test(arguments: fixtureArchs) func gradientsMatchFiniteDifferences(arch: String) throws {
        let fx = try FixtureModel(arch)
        let f = try RomeEditFixtureTests.Fixture(arch, layers: fx.config.nLayer)
        let layers = Array(0..<fx.config.nLayer), c = fx.config.dModel
        let shared = try fx.model.sharedScanPass(f.inputs, layers: layers, f.hp)
        let zero = [Float](repeating: 0, count: c)
        #expect(abs(Double(shared.loss.total) - (try loss(fx, f, layer: 0, delta: zero, logP0: shared.logP0))) < 1e-5)
        for l in layers {
            let g = try #require(shared.gradients[l])
            // The step scales with m₀ (the size of what δ is added to); one Richardson step as in
            // BackwardModelTests cancels the O(h²) truncation.
            let m0 = try #require(shared.m0[l])
            let h = 0.05 * sqrtf(m0.reduce(0) { $0 + $1 * $1 } / Float(c))
            func central(_ i: Int, _ h: Float) throws -> Double {
                var plus = zero, minus = zero
                plus[i] = h; minus[i] = -h
                return (try loss(fx, f, layer: l, delta: plus, logP0: shared.logP0)
                        - loss(fx, f, layer: l, delta: minus, logP0: shared.logP0)) / Double(2 * h)
            }
            let numeric = try (0..<c).map { i in Float((4 * (try central(i, h / 2)) - (try central(i, h))) / 3) }
            let err = relativeL2(g, numeric)
            print("\(arch) g_\(l): ‖g‖ \(sqrtf(g.reduce(0) { $0 + $1 * $1 })), relative error vs finite differences \(err)")
            #expect(err < 1e-3, "\(arch) layer \(l): \(err)")
        }
    }

    /// The layer with the smallest LA_est is the full scan's exact argmin, and an optimization started
    /// from the shared pass is the per-layer one (same δ, r, û, LA). On these random two-layer models the
    /// two layers' exact LAs are within a few percent of each other when each stops on the fixtures' 19
    /// steps (llama: 0.204 vs 0.197, the layer that plateaus 1.2 nats higher taking the smaller δ), so the
    /// test gives both layers one common target, one nat below the δ = 0 loss, where the argmin is clear;
    /// the estimate's law itself was measured on SmolLM2 (docs/ALGORITHM_NOTES.md, "Fast scan"). The clamp
    /// is lifted so that the common target, not the clamp, ends each optimization (the clamp bound has its
    /// own test below).
    @Test(arguments: fixtureArchs) func estimatePicksTheFullScansLayer(arch: String) throws {
        let fx = try FixtureModel(arch)
        var f = try RomeEditFixtureTests.Fixture(arch, layers: fx.config.nLayer)
        let layers = Array(0..<fx.config.nLayer)
        let solvers = try layers.map { try f.solver($0) }
        let shared = try fx.model.sharedScanPass(f.inputs, layers: layers, f.hp)
        f.hp.steps = 200
        f.hp.earlyStopLoss = shared.loss.total - 1
        f.hp.clampNormFactor = 100
        let est = try fx.model.layerEstimates(shared, layers: layers, f.hp, covariance: solvers)
        let exact = try fx.model.scan(f.inputs, layers: layers, f.hp, covariance: solvers, workers: 1) { _, _ in }
        let fast = try fx.model.scan(f.inputs, layers: layers, f.hp, covariance: solvers, workers: 1, shared: shared) { _, _ in }
        print("\(arch) LA_est \(est.map(\.estimate)), exact LA \(exact.map(\.relativeSize))")
        let argmin = exact.indices.min { exact[$0].relativeSize < exact[$1].relativeSize }!
        // The estimate is a law measured on SmolLM2, not an identity: on the tiny Llama 3 it ranks the two
        // layers the other way (LA_est 0.140 vs 0.113, exact LA 0.165 vs 0.213), recorded as known.
        withKnownIssue("LA_est misranks the tiny llama3's two layers") {
            #expect(LayerEstimate.top(est, count: 1) == [layers[argmin]])
        } when: { arch == "llama3" }
        for (a, b) in zip(exact, fast) {
            #expect(RomeEditFixtureTests.maxAbs(a.optimization.delta, b.optimization.delta) <= 1e-6, "\(arch) layer \(a.layer) δ")
            #expect(RomeEditFixtureTests.maxAbs(a.r, b.r) <= 1e-5 * max(1, a.r.map(abs).max()!), "\(arch) layer \(a.layer) r")
            #expect(a.u == b.u && a.optimization.adamSteps == b.optimization.adamSteps)
            #expect(abs(a.relativeSize - b.relativeSize) <= 1e-6 * a.relativeSize)
        }
    }

    /// Where ROME's clamp ends the optimization (‖δ_l‖ = clamp · ‖m₀,l‖, as on Gemma 3 at every layer), the
    /// estimate's clamp bound is the exact LA, layer by layer: LA = ‖δ‖ · ‖û‖ / (|k · û| · ‖W‖_F) with
    /// everything but δ known at δ = 0.
    @Test(arguments: fixtureArchs) func clampBoundIsTheExactLAWhereTheClampBinds(arch: String) throws {
        let fx = try FixtureModel(arch)
        var f = try RomeEditFixtureTests.Fixture(arch, layers: fx.config.nLayer)
        f.hp.clampNormFactor = 0.05  // far below what the loss asks for within the fixtures' 19 steps
        let layers = Array(0..<fx.config.nLayer)
        let solvers = try layers.map { try f.solver($0) }
        let shared = try fx.model.sharedScanPass(f.inputs, layers: layers, f.hp)
        let est = try fx.model.layerEstimates(shared, layers: layers, f.hp, covariance: solvers)
        let exact = try fx.model.scan(f.inputs, layers: layers, f.hp, covariance: solvers, workers: 1, shared: shared) { _, _ in }
        for (e, x) in zip(est, exact) {
            let d = x.optimization.delta, m0 = x.optimization.m0
            let clamped = sqrtf(d.reduce(0) { $0 + $1 * $1 }) / sqrtf(m0.reduce(0) { $0 + $1 * $1 })
            print("\(arch) layer \(e.layer): ‖δ‖/‖m₀‖ \(clamped), LA_est \(e.estimate), exact LA \(x.relativeSize)")
            #expect(abs(clamped - 0.05) <= 1e-5, "\(arch) layer \(e.layer): δ did not end on the clamp")
            #expect(abs(e.estimate - x.relativeSize) <= 1e-4 * x.relativeSize, "\(arch) layer \(e.layer)")
        }
    }

    /// LA_est divides by the current ‖W_l‖_F (as the exact LA does, so a lifelong run's inflated layer
    /// looks cheap to both): with the same pass, doubling W_1 halves layer 1's estimate only.
    @Test func estimateFollowsTheWeightNorm() throws {
        let fx = try FixtureModel("llama")
        let f = try RomeEditFixtureTests.Fixture("llama", layers: fx.config.nLayer)
        let layers = Array(0..<fx.config.nLayer)
        let solvers = try layers.map { try f.solver($0) }
        let shared = try fx.model.sharedScanPass(f.inputs, layers: layers, f.hp)
        let before = try fx.model.layerEstimates(shared, layers: layers, f.hp, covariance: solvers)
        let w = fx.model.mlpOutputWeight(layer: 1)
        try fx.model.setMLPOutputWeight(layer: 1, w.map { $0 * 2 })
        defer { try? fx.model.setMLPOutputWeight(layer: 1, w) }
        let after = try fx.model.layerEstimates(shared, layers: layers, f.hp, covariance: solvers)
        #expect(after[0] == before[0])
        #expect(abs(after[1].weightNorm / before[1].weightNorm - 2) <= 1e-5)
        #expect(abs(after[1].estimate / before[1].estimate - 0.5) <= 1e-5)
    }
}
