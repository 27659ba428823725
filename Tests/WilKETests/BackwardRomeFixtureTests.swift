import Foundation
import Formats
import Testing
import TestSupport
@testable import WilKE

/// ROME's loss terms and dLoss/dδ against PyTorch autograd (samples/reference/make_rome_fixtures.py):
/// at δ = 0 and at the fixture's random δ, computed in the cached §8 form.
@Suite struct BackwardRomeFixtureTests {
    @Test(arguments: fixtureArchs) func lossAndGradientMatchPyTorch(arch: String) throws {
        let fx = try FixtureModel(arch)
        let base = TestPaths.fixture("WilKETests", "rome/\(arch)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: base + ".json"))) as? [String: Any])
        let ref = try SafetensorsFile(path: base + ".safetensors")
        func tensor(_ name: String) throws -> [Float] {
            let t = try #require(ref.tensor(named: name), "\(name)")
            return floats(ref.data(t), t.elementCount)
        }
        let inputs = try #require(json["inputs"] as? [String: Any]), hp = try #require(json["hparams"] as? [String: Any])
        let grads = try #require(json["grad"] as? [String: [String: Double]])
        let rows = try #require(inputs["rows"] as? [[Int]]), idxs = try #require(inputs["idxs"] as? [Int])
        let klRow = try #require(inputs["kl_row"] as? [Int]), klIdx = try #require(inputs["kl_idx"] as? Int)
        let layer = try #require(json["edit_layer"] as? Int)
        let p = RomeProblem(model: fx.model, rows: rows + [klRow], subjects: idxs + [klIdx],
                            targets: try #require(inputs["target"] as? [Int]),
                            klFactor: Float(try #require(hp["kl_factor"] as? Double)),
                            weightDecay: Float(try #require(hp["v_weight_decay"] as? Double)))
        let m0 = try p.reference(layer: layer)
        let cached = try p.base(layer: layer)
        for point in ["zero", "delta"] {
            let delta = point == "zero" ? [Float](repeating: 0, count: fx.config.dModel) : try tensor("grad.delta")
            let batch = p.fastBatch(delta, layer: layer, base: cached)
            let (terms, g) = try p.gradient(batch, delta, m0, layer: layer)
            let want = try #require(grads[point])
            let termErr = [("nll", terms.nll, want["nll"]!), ("kl", terms.kl, want["kl_raw"]!), ("wd", terms.wd, want["wd"]!),
                           ("total", terms.total, want["total"]!)]
                .map { ($0.0, abs(Double($0.1) - $0.2)) }
            let e = relativeL2(g, try tensor("grad.\(point).total"))
            // The NLL part alone (no KL, no weight decay) against its own autograd gradient.
            let nllOnly = RomeProblem(model: p.model, rows: p.rows, subjects: p.subjects, targets: p.targets,
                                      klFactor: p.klFactor, weightDecay: 0)
            let eNLL = relativeL2(try nllOnly.gradient(batch, delta, m0, layer: layer, kl: false).grad, try tensor("grad.\(point).nll"))
            print("\(arch) δ=\(point): loss abs diffs \(termErr), dLoss/dδ relative error \(e) (nll part \(eNLL))")
            for (name, d) in termErr { #expect(d < 1e-4, "\(arch) \(point) \(name) differs by \(d)") }
            #expect(e < 1e-3 && eNLL < 1e-3, "\(arch) \(point) gradient relative error \(e), nll \(eNLL)")
        }
    }
}
