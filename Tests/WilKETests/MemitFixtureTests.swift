import Foundation
import Formats
import Testing
import TestSupport
@testable import WilKE

/// MEMIT (ALGORITHM.md §3.1) against the PyTorch reference (samples/reference/memit_reference.py) on the
/// tiny GPT-2 and Llama models, over both layers (z at the last), with the ROME fixtures' token inputs
/// and covariances: z, and per layer k̄, H, R_l, (λC + k̄k̄ᵀ)⁻¹k̄ and ΔW_l, and h^L after the spread.
@Suite struct MemitFixtureTests {
    static let archs = ["gpt2", "llama"]

    struct Run {
        let fx: FixtureModel
        let rome: RomeEditFixtureTests.Fixture
        let json: [String: Any]
        let ref: SafetensorsFile
        let hp: EditHyperparameters
        let layers: [Int]
        let groups: [Int]

        init(_ arch: String) throws {
            fx = try FixtureModel(arch)
            rome = try RomeEditFixtureTests.Fixture(arch, layers: fx.config.nLayer)
            let base = TestPaths.fixture("WilKETests", "memit/\(arch)")
            json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: base + ".json"))) as? [String: Any])
            ref = try SafetensorsFile(path: base + ".safetensors")
            let h = try #require(json["hparams"] as? [String: Any])
            layers = try #require(h["layers"] as? [Int])
            groups = try #require(json["groups"] as? [Int])
            var p = rome.hp
            p.steps = try #require(h["v_num_grad_steps"] as? Int)
            p.learningRate = Float(try #require(h["v_lr"] as? Double))
            p.weightDecay = Float(try #require(h["v_weight_decay"] as? Double))
            p.memitClampNormFactor = Float(try #require(h["clamp_norm_factor"] as? Double))
            p.klFactor = Float(try #require(h["kl_factor"] as? Double))
            p.earlyStopLoss = Float(try #require(h["early_stop"] as? Double))
            p.memitLambda = try #require(h["mom2_update_weight"] as? Double)
            p.memitLayers = layers
            hp = p
        }

        func tensor(_ name: String) throws -> [Float] {
            let t = try #require(ref.tensor(named: name), "\(name)")
            return floats(ref.data(t), t.elementCount)
        }

        /// Runs MEMIT, adding each ΔW_l straight to the model's weights.
        func edit(layers: [Int]? = nil) throws -> MemitUpdate {
            let solvers = try Dictionary(uniqueKeysWithValues: (0..<fx.config.nLayer).map { ($0, try rome.solver($0)) })
            let model = fx.model
            return try model.memitUpdate(rome.inputs, layers: layers ?? self.layers, templateGroups: groups, hp,
                                         covariance: { solvers[$0] }) { step in
                var w = model.mlpOutputWeight(layer: step.layer)
                let ff = model.config.dFF
                for (i, r) in step.residual.enumerated() { for j in 0..<ff { w[i * ff + j] += r * step.right[j] } }
                try model.setMLPOutputWeight(layer: step.layer, w)
            }
        }
    }

    static func maxAbs(_ a: [Float], _ b: [Float]) -> Float {
        a.count == b.count ? zip(a, b).map { abs($0 - $1) }.max() ?? 0 : .infinity
    }

    static func norm(_ a: [Float], minus b: [Float]) -> Float { zip(a, b).reduce(Float(0)) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }.squareRoot() }

    @Test(arguments: archs) func memitMatchesPyTorch(arch: String) throws {
        let run = try Run(arch)
        let up = try run.edit()
        // (name, max abs diff, largest reference magnitude): 19 Adam steps amplify f32 rounding, so the
        // bound is 1e-4 relative to the vector's scale (|h^L| reaches ~10 on the Llama model).
        var diffs: [(String, Float, Float)] = []
        func compare(_ name: String, _ ours: [Float], _ ref: String) throws {
            let r = try run.tensor(ref)
            diffs.append((name, Self.maxAbs(ours, r), r.map(abs).max() ?? 0))
        }
        try compare("h^L", up.optimization.m0, "z.h0")
        try compare("delta", up.optimization.delta, "z.delta")
        try compare("z", up.z, "z.z")
        try compare("h_after", up.hAfter, "h_after")
        for s in up.steps {
            let l = s.layer
            try compare("l\(l).kbar", s.key, "l\(l).kbar")
            try compare("l\(l).H", s.h, "l\(l).H")
            try compare("l\(l).R", s.residual, "l\(l).R")
            try compare("l\(l).adj", s.right, "l\(l).adj")
            try compare("l\(l).dW", s.residual.flatMap { r in s.right.map { r * $0 } }, "l\(l).dW")
        }
        let z = try #require(run.json["z"] as? [String: Any])
        let refTrace = try run.tensor("z.trace")
        let ourTrace = up.optimization.losses.map(\.total)
        let traceDiff = Self.maxAbs(ourTrace, stride(from: 3, to: refTrace.count, by: 4).map { refTrace[$0] })
        print("\(arch) MEMIT vs PyTorch: max abs diffs \(diffs.map { "\($0.0) \($0.1) (of \($0.2))" }.joined(separator: ", ")), "
              + "loss trace \(traceDiff), steps \(up.optimization.adamSteps)")
        #expect(up.steps.map(\.layer) == run.layers)
        #expect(up.optimization.adamSteps == z["steps"] as? Int)
        #expect(traceDiff <= 1e-4)
        for (name, d, scale) in diffs { #expect(d <= 1e-4 * max(1, scale), "\(arch) \(name) differs by \(d) (scale \(scale))") }
    }

    /// Before the spread h^L is z − δ (m₀); each layer's update moves h^L toward z, and the last layer's
    /// R is the whole remaining gap. The spread ends much closer to z than it started.
    @Test(arguments: archs) func spreadMovesTheResidualTowardZ(arch: String) throws {
        let run = try Run(arch)
        let up = try run.edit()
        let gaps = up.steps.map { Self.norm(up.z, minus: $0.h) } + [Self.norm(up.z, minus: up.hAfter)]
        print("\(arch) ‖z − h^L‖ through the spread: \(gaps)")
        #expect(Self.maxAbs(up.steps[0].h, up.optimization.m0) < 1e-5)
        #expect(zip(gaps, gaps.dropFirst()).allSatisfy { $1 < $0 })
        #expect(gaps.last! < 0.5 * gaps.first!)
        let last = try #require(up.steps.last)
        #expect(Self.maxAbs(last.residual, zip(up.z, last.h).map { $0 - $1 }) < 1e-6)
    }

    /// A single layer with λ → 0 writes the key exactly: (W + ΔW) k̄ = W k̄ + (z − H)·k̄ᵀC⁻¹k̄/(λ + k̄ᵀC⁻¹k̄).
    @Test func singleLayerUpdateMatchesShermanMorrison() throws {
        let run = try Run("llama")
        let model = run.fx.model
        let l = 1
        let w0 = model.mlpOutputWeight(layer: l)
        let up = try run.edit(layers: [l])
        let s = try #require(up.steps.first)
        let cInvK = try run.rome.solver(l)(s.key)
        let kCk = zip(s.key, cInvK).reduce(0.0) { $0 + Double($1.0) * $1.1 }
        let w1 = model.mlpOutputWeight(layer: l)
        let ff = model.config.dFF
        let moved = (0..<model.config.dModel).map { i in (0..<ff).reduce(Float(0)) { $0 + (w1[i * ff + $1] - w0[i * ff + $1]) * s.key[$1] } }
        let expected = zip(up.z, s.h).map { Float(Double($0 - $1) * kCk / (run.hp.memitLambda + kCk)) }
        print("ΔW k̄ vs (z − H)·s/(λ + s): max abs diff \(Self.maxAbs(moved, expected)), s = \(kCk)")
        #expect(Self.maxAbs(moved, expected) < 1e-4)
    }

    @Test func layersOutsideTheModelOrUnorderedAreErrors() throws {
        let run = try Run("gpt2")
        let w0 = (0..<2).map { run.fx.model.mlpOutputWeight(layer: $0) }
        #expect(throws: WilKEError.invalidLayer(2)) { try run.edit(layers: [0, 2]) }
        #expect(throws: WilKEError.invalidLayer(-1)) { try run.edit(layers: [-1, 0]) }
        #expect(throws: WilKEError.self) { try run.edit(layers: [1, 0]) }
        #expect(throws: WilKEError.self) { try run.edit(layers: []) }
        #expect(throws: WilKEError.self) {
            try run.fx.model.memitUpdate(run.rome.inputs, layers: [0, 1], templateGroups: [1, 1], run.hp, covariance: { _ in nil }) { _ in }
        }
        // Nothing was written before the error.
        #expect((0..<2).map { run.fx.model.mlpOutputWeight(layer: $0) } == w0)
    }
}

@Suite struct MemitHyperparameterTests {
    @Test func defaultLayersFollowTheReferenceConfigsOrROMEsLayer() {
        let xl = EditHyperparameters.defaults(layers: 48, family: .gpt2)
        #expect(xl.memitLayers == Array(13...17) && xl.memitLambda == 20000)
        #expect(EditHyperparameters.defaults(layers: 28, family: .gptj).memitLayers == Array(3...8))
        let smol = EditHyperparameters.defaults(layers: 30, family: .llama)
        #expect(smol.memitLayers == Array(3...7) && smol.memitLambda == 15000 && smol.memitClampNormFactor == 0.75)
        #expect(EditHyperparameters.defaults(layers: 2, family: .llama).memitLayers == [0, 1])
        #expect(smol.memitRecord["layers"] == "3,4,5,6,7" && smol.memitRecord["clamp_norm_factor"] == "0.75")
        #expect(smol.record["layers"] == nil)  // ROME / WilKE patches record what they did before
    }

    /// Settings saved before MEMIT existed (an evaluation run's config) decode to today's defaults, so
    /// `wilke eval` still resumes such a run; today's settings round-trip.
    @Test func settingsWithoutMemitFieldsDecodeToTheDefaults() throws {
        let smol = EditHyperparameters.defaults(layers: 30, family: .llama)
        var old = try #require(try JSONSerialization.jsonObject(with: try JSONEncoder().encode(smol)) as? [String: Any])
        for k in ["memitLayers", "memitLambda", "memitClampNormFactor", "memitTemplateLengths"] {
            #expect(old.removeValue(forKey: k) != nil, "\(k)")
        }
        let decoded = try JSONDecoder().decode(EditHyperparameters.self, from: try JSONSerialization.data(withJSONObject: old))
        #expect(decoded == smol)
        var changed = smol
        changed.memitLayers = [2, 9]; changed.memitLambda = 5; changed.steps = 7
        #expect(try JSONDecoder().decode(EditHyperparameters.self, from: try JSONEncoder().encode(changed)) == changed)
    }
}
