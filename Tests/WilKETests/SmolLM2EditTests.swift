import Formats
import Foundation
import Patch
import Testing
import TestSupport
@testable import WilKE

/// A quick ROME edit on the real SmolLM2 (the full WilKE / ROME acceptance runs are `make accept`).
@Suite(.serialized) struct SmolLM2EditTests {
    static let eiffel = EditRequest(prompt: "{} is located in the city of", subject: "The Eiffel Tower",
                                    targetNew: "Rome", targetTrue: "Paris")

    @Test(.enabled(if: RealModel.available))
    func romeEditMakesRomeTheAnswerAndRecordsAPatch() throws {
        let m = try LoadedModel(path: RealModel.path)
        var hp = EditHyperparameters.defaults(layers: m.config.nLayer, family: .llama)
        hp.useCovariance = false  // C = I keeps the test quick (no key statistics pass)
        let unrelated = "The opposite of hot is"
        let before = try m.nextTokens(after: try m.encodePrompt(unrelated), top: 1)[0].id
        let editor = Editor(m, hyperparameters: hp) { _ in nil }
        let report = try editor.edit(Self.eiffel, method: .rome)
        print("ROME on SmolLM2: layer \(report.layer), p(Rome) \(report.newBefore) -> \(report.newAfter), p(Paris) \(report.oldBefore ?? -1) -> \(report.oldAfter ?? -1), \(report.adamSteps) steps, \(report.seconds) s")
        #expect(report.layer == hp.romeLayer)
        #expect(report.newAfter > 0.5)
        #expect((report.oldAfter ?? 1) < (report.oldBefore ?? 0))
        let top = try m.nextTokens(after: try m.encodePrompt(Self.eiffel.filledPrompt), top: 1)[0]
        #expect(top.piece == " Rome")
        #expect(try m.nextTokens(after: try m.encodePrompt(unrelated), top: 1)[0].id == before)
        let patch = editor.patch()
        #expect(patch.steps.count == 1)
        #expect(patch.steps[0].tensor == "blk.\(hp.romeLayer).ffn_down.weight")
        #expect(patch.steps[0].edits.first?.requests.first?.targetNew == "Rome")
        // The patch round-trips through its file form.
        #expect(try Patch.decode(try patch.encode()).id == patch.id)
    }

    @Test(.enabled(if: RealModel.available))
    func badRequestsAreClearErrors() throws {
        let m = try LoadedModel(path: RealModel.path)
        var hp = EditHyperparameters.defaults(layers: m.config.nLayer, family: .llama)
        hp.useCovariance = false
        hp.templateLengths = [[5, 5]]
        let editor = Editor(m, hyperparameters: hp) { _ in nil }
        #expect(throws: WilKEError.self) { try EditRequest(prompt: "is located in", subject: "X", targetNew: "Y").validate() }
        #expect(throws: WilKEError.self) { try EditRequest(prompt: "{} is in", subject: "X", targetNew: " ").validate() }
        #expect(throws: WilKEError.self) { try EditRequest(prompt: "{} is {}", subject: "X", targetNew: "Y").validate() }
        // Target already the answer.
        let known = EditRequest(prompt: "The capital of {} is", subject: "France", targetNew: "Paris")
        #expect(throws: WilKEError.invalidRequest("the model already answers \"Paris\" to \"The capital of France is\"")) {
            try editor.edit(known, method: .rome)
        }
        #expect(throws: WilKEError.invalidLayer(30)) { try editor.edit(Self.eiffel, method: .rome, layer: 30) }
        #expect(editor.patch().steps.isEmpty)
    }
}
