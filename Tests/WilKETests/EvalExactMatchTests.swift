import Formats
import Foundation
import Testing
import TestSupport
@testable import WilKE

/// The batched exact-match probe on the real SmolLM2 agrees with the editor's one-at-a-time test.
@Suite(.serialized) struct EvalExactMatchTests {
    @Test(.enabled(if: RealModel.available))
    func batchedProbesAgreeWithTheEditorsTest() throws {
        let m = try LoadedModel(path: RealModel.path)
        let probes = [
            ExactMatch.Probe(prompt: "The capital of France is", answer: "Paris"),
            ExactMatch.Probe(prompt: "The capital of France is", answer: "Madrid"),
            ExactMatch.Probe(prompt: "The Eiffel Tower is located in the city of", answer: "Paris"),
            ExactMatch.Probe(prompt: "The capital of Japan is", answer: "Tokyo"),
            ExactMatch.Probe(prompt: "The capital of Japan is", answer: "New York City"),
        ]
        // Batch size 2 makes rows of different lengths share forward calls and splits the list unevenly.
        let batched = try ExactMatch(m, batchSize: 2).matches(probes)
        let editor = Editor(m, hyperparameters: EditHyperparameters.defaults(layers: m.config.nLayer, family: .llama)) { _ in nil }
        let single = try probes.map { p in
            try editor.greedyMatches(try m.encodePrompt(p.prompt), m.tokenizer.encode(" " + p.answer, addSpecial: false))
        }
        print("exact match on SmolLM2: \(batched)")
        #expect(batched == single)
        #expect(batched[0] && !batched[1])  // the model answers Paris, so not Madrid
        let facts = [EditRequest(prompt: "The capital of {} is", subject: "France", targetNew: "Rome", targetTrue: "Paris"),
                     EditRequest(prompt: "The capital of {} is", subject: "France", targetNew: "Rome", targetTrue: "Madrid"),
                     EditRequest(prompt: "The capital of {} is", subject: "France", targetNew: "Rome")]
        #expect(try ExactMatch(m).known(facts) == [facts[0]])
        // Facts without target_true count as lost in the retention denominator.
        #expect(try ExactMatch(m).retention(facts) == 1.0 / 3)
    }
}
