import Formats
import Foundation
import Patch
import Testing
import TestSupport
@testable import WilKE

/// MEMIT on the real SmolLM2 with its default layers and the key statistics (from the shared cache when
/// `wilke stats` / an earlier edit made them, else computed here once).
@Suite(.serialized) struct MemitSmolLM2Tests {
    @Test(.enabled(if: RealModel.available))
    func memitEditMakesRomeTheAnswerWithOneStepPerLayer() throws {
        let m = try LoadedModel(path: RealModel.path)
        let hp = EditHyperparameters.defaults(layers: m.config.nLayer, family: .llama)
        #expect(hp.memitLayers == [3, 4, 5, 6, 7])
        let stats = try KeyStatistics.compute(model: m.model, tokenizer: m.tokenizer,
                                              fingerprint: ModelFingerprint(checkpoint: m.checkpoint, nLayer: m.config.nLayer),
                                              options: StatsOptions(layers: hp.memitLayers), cache: StatsCache())
        let solvers = Dictionary(uniqueKeysWithValues: stats.map { ($0.covariance.layer, $0.covariance) })
        let editor = Editor(m, hyperparameters: hp) { l in solvers[l]?.solver }
        let unrelated = "The opposite of hot is"
        let before = try m.nextTokens(after: try m.encodePrompt(unrelated), top: 1)[0].id
        let report = try editor.edit(SmolLM2EditTests.eiffel, method: .memit)
        print("MEMIT on SmolLM2: z layer \(report.layer), p(Rome) \(report.newBefore) -> \(report.newAfter), "
              + "p(Paris) \(report.oldBefore ?? -1) -> \(report.oldAfter ?? -1), \(report.adamSteps) steps, "
              + "‖ΔW‖/‖W‖ \(report.relativeSizes.sorted { $0.key < $1.key }), \(report.seconds) s")
        #expect(report.layer == 7 && report.method == .memit)
        #expect(Set(report.relativeSizes.keys) == Set(hp.memitLayers))
        let top = try m.nextTokens(after: try m.encodePrompt(SmolLM2EditTests.eiffel.filledPrompt), top: 1)[0]
        #expect(top.piece == " Rome")
        #expect(try m.nextTokens(after: try m.encodePrompt(unrelated), top: 1)[0].id == before)
        let patch = editor.patch()
        #expect(patch.steps.map(\.tensor) == hp.memitLayers.map { "blk.\($0).ffn_down.weight" })
        #expect(patch.steps.allSatisfy { $0.rank == 1 && $0.edits.first?.method == "memit" })
        #expect(patch.steps.map { $0.edits.first?.layer } == hp.memitLayers)
        #expect(patch.steps.allSatisfy { $0.edits.first?.requests.first?.targetNew == "Rome" })
        // The roll-back of the evaluation protocol names the report's layer: the same layers again.
        let back = try #require(SmolLM2EditTests.eiffel.swapped())
        editor.hyperparameters.steps = 3  // only the layers matter here; keeps the test short
        let rollback = try editor.edit(back, method: .memit, layer: report.layer, allowKnownTarget: true)
        #expect(rollback.layer == report.layer && editor.patch().steps.count == 2 * hp.memitLayers.count)
        #expect(throws: WilKEError.self) { try editor.edit(back, method: .memit, layer: 5, allowKnownTarget: true) }
    }

    @Test(.enabled(if: RealModel.available))
    func memitLayersOutsideTheModelAreAnError() throws {
        let m = try LoadedModel(path: RealModel.path)
        var hp = EditHyperparameters.defaults(layers: m.config.nLayer, family: .llama)
        hp.useCovariance = false
        hp.memitLayers = [28, 30]
        let editor = Editor(m, hyperparameters: hp) { _ in nil }
        #expect(throws: WilKEError.invalidLayer(30)) { try editor.edit(SmolLM2EditTests.eiffel, method: .memit) }
        #expect(editor.patch().steps.isEmpty)
    }
}
