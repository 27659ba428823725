import Foundation
import Formats
import Synchronization
import Testing
import TestSupport
@testable import WilKE

/// A whole ROME edit and WilKE's layer scan against the PyTorch reference of the same algorithm
/// (samples/reference/rome_reference.py via make_rome_fixtures.py), given the same token-level inputs
/// and the same covariance C: δ, v*, û, r, ΔW and LA(l).
@Suite struct RomeEditFixtureTests {
    struct Fixture {
        let json: [String: Any]
        let ref: SafetensorsFile
        let inputs: RomeInputs
        var hp: EditHyperparameters
        let layer: Int

        init(_ arch: String, layers: Int) throws {
            let base = TestPaths.fixture("WilKETests", "rome/\(arch)")
            json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: base + ".json"))) as? [String: Any])
            ref = try SafetensorsFile(path: base + ".safetensors")
            let i = try #require(json["inputs"] as? [String: Any]), h = try #require(json["hparams"] as? [String: Any])
            inputs = try RomeInputs(rewriteRows: try #require(i["rows"] as? [[Int]]), rewriteIndex: try #require(i["idxs"] as? [Int]),
                                    target: try #require(i["target"] as? [Int]), klRow: try #require(i["kl_row"] as? [Int]),
                                    klIndex: try #require(i["kl_idx"] as? Int), keyRows: try #require(i["key_rows"] as? [[Int]]),
                                    keyIndex: try #require(i["key_idxs"] as? [Int]))
            var p = EditHyperparameters(romeLayer: 0, scanLayers: Array(0..<layers))
            p.steps = try #require(h["v_num_grad_steps"] as? Int)
            p.learningRate = Float(try #require(h["v_lr"] as? Double))
            p.weightDecay = Float(try #require(h["v_weight_decay"] as? Double))
            p.clampNormFactor = Float(try #require(h["clamp_norm_factor"] as? Double))
            p.klFactor = Float(try #require(h["kl_factor"] as? Double))
            p.earlyStopLoss = Float(try #require(h["early_stop"] as? Double))
            p.useCovariance = try #require(h["mom2_adjustment"] as? Bool)
            hp = p
            layer = try #require(json["edit_layer"] as? Int)
        }

        func tensor(_ name: String) throws -> [Float] {
            let t = try #require(ref.tensor(named: name), "\(name)")
            return floats(ref.data(t), t.elementCount)
        }

        /// Solves C x = k for the fixture's covariance of `layer` (Gaussian elimination in f64).
        func solver(_ layer: Int) throws -> CovarianceSolve {
            let c = try tensor("C.l\(layer)").map(Double.init)
            let n = Int(Double(c.count).squareRoot())
            return { k in NullSpaceTests.gaussSolve(c, k.map(Double.init), n) }
        }
    }

    static func maxAbs(_ a: [Float], _ b: [Float]) -> Float { zip(a, b).map { abs($0 - $1) }.max() ?? .infinity }

    @Test(arguments: fixtureArchs) func romeEditMatchesPyTorch(arch: String) throws {
        let fx = try FixtureModel(arch)
        let f = try Fixture(arch, layers: fx.config.nLayer)
        let up = try fx.model.rankOneUpdate(f.inputs, layer: f.layer, f.hp, covariance: try f.solver(f.layer))
        let dW = up.r.flatMap { ri in up.u.map { ri * $0 } }
        let diffs: [(String, Float)] = [
            ("delta", Self.maxAbs(up.optimization.delta, try f.tensor("rome.delta"))),
            ("v*", Self.maxAbs(up.optimization.vStar, try f.tensor("rome.v_star"))),
            ("u_hat", Self.maxAbs(up.u, try f.tensor("rome.u_hat"))),
            ("r", Self.maxAbs(up.r, try f.tensor("rome.r"))),
            ("dW", Self.maxAbs(dW, try f.tensor("rome.dW"))),
        ]
        let rome = try #require(f.json["rome"] as? [String: Any])
        let la = try #require(rome["LA"] as? Double)
        print("\(arch) ROME vs PyTorch: max abs diffs \(diffs), LA \(up.relativeSize) vs \(la), steps \(up.optimization.adamSteps)")
        #expect(up.optimization.adamSteps == rome["steps"] as? Int)
        for (name, d) in diffs { #expect(d <= 1e-4, "\(arch) \(name) differs by \(d)") }
        #expect(abs(Double(up.relativeSize) - la) <= 1e-4 * max(1, la))
    }

    /// WilKE's scan: LA(l) for every layer and the argmin.
    @Test(arguments: fixtureArchs) func wilkeScanMatchesPyTorch(arch: String) throws {
        let fx = try FixtureModel(arch)
        let f = try Fixture(arch, layers: fx.config.nLayer)
        let wilke = try #require(f.json["wilke"] as? [String: Any])
        let refLA = try #require(wilke["LA"] as? [Double]), chosen = try #require(wilke["chosen"] as? Int)
        var ours: [Float] = []
        for l in try #require(wilke["layers"] as? [Int]) {
            let up = try fx.model.rankOneUpdate(f.inputs, layer: l, f.hp, covariance: try f.solver(l))
            ours.append(up.relativeSize)
            #expect(Self.maxAbs(up.r, try f.tensor("wilke.l\(l).r")) <= 1e-4, "\(arch) layer \(l) r")
        }
        print("\(arch) WilKE LA ours \(ours) vs PyTorch \(refLA)")
        for (a, b) in zip(ours, refLA) { #expect(abs(Double(a) - b) <= 1e-4 * max(1, b)) }
        #expect(ours.indices.min { ours[$0] < ours[$1] } == chosen)
    }

    /// The scan computed two layers at a time gives bit-identical updates to the one-by-one scan, and
    /// reports every layer once with a running count.
    @Test(arguments: fixtureArchs) func parallelScanEqualsSequentialScan(arch: String) throws {
        let fx = try FixtureModel(arch)
        let f = try Fixture(arch, layers: fx.config.nLayer)
        let layers = Array(0..<fx.config.nLayer)
        let solvers = try layers.map { try f.solver($0) }
        let one = try fx.model.scan(f.inputs, layers: layers, f.hp, covariance: solvers, workers: 1) { _, _ in }
        let seen = Mutex<[(Int, Int)]>([])
        let two = try fx.model.scan(f.inputs, layers: layers, f.hp, covariance: solvers, workers: 2, exclusiveBLAS: false) { up, n in
            seen.withLock { $0.append((up.layer, n)) }
        }
        #expect(one.map(\.layer) == layers && two.map(\.layer) == layers)
        for (a, b) in zip(one, two) {
            #expect(a.r == b.r && a.u == b.u && a.relativeSize == b.relativeSize, "\(arch) layer \(a.layer)")
            #expect(a.optimization.delta == b.optimization.delta)
        }
        let calls = seen.withLock { $0 }
        #expect(calls.map(\.1) == Array(1...layers.count))
        #expect(Set(calls.map(\.0)) == Set(layers))
    }

    /// The edited layer maps k_c to v*: (W + r ûᵀ) k_c + b = v*.
    @Test func editedLayerMapsTheKeyToVStar() throws {
        let fx = try FixtureModel("llama")
        let f = try Fixture("llama", layers: fx.config.nLayer)
        let up = try fx.model.rankOneUpdate(f.inputs, layer: f.layer, f.hp, covariance: try f.solver(f.layer))
        var w = fx.model.mlpOutputWeight(layer: f.layer)
        let (c, ff) = (fx.config.dModel, fx.config.dFF)
        for i in 0..<c { for j in 0..<ff { w[i * ff + j] += up.r[i] * up.u[j] } }
        let kc = try fx.model.subjectKeys(f.inputs, layer: f.layer).bare
        let out = (0..<c).map { i in (0..<ff).reduce(Float(0)) { $0 + w[i * ff + $1] * kc[$1] } }
        let err = Self.maxAbs(out, up.optimization.vStar)
        print("W' k_c vs v*: max abs diff \(err)")
        #expect(err < 1e-4)
    }
}
