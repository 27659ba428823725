import Foundation
import Formats
import Patch
import Testing
import TestSupport
@testable import WilKE

/// The lifelong protocol on the real SmolLM2 with a tiny budget: a run stopped after edit 1 and resumed
/// ends exactly like an uninterrupted run (same per-edit log, same patch id).
@Suite(.serialized) struct EvalResumeTests {
    static let facts = [
        EditRequest(prompt: "{} is located in the city of", subject: "The Eiffel Tower", targetNew: "Rome", targetTrue: "Paris",
                    caseID: 1, paraphrasePrompts: ["The Eiffel Tower can be found in the city of"],
                    neighborhoodPrompts: ["The Louvre is located in the city of"], neighborhoodAnswer: "Paris"),
        EditRequest(prompt: "The capital of {} is", subject: "France", targetNew: "Berlin", targetTrue: "Paris", caseID: 2,
                    paraphrasePrompts: ["The capital city of France is"],
                    neighborhoodPrompts: ["The capital of Italy is"], neighborhoodAnswer: "Rome"),
        EditRequest(prompt: "The capital of {} is", subject: "Japan", targetNew: "Seoul", targetTrue: "Tokyo", caseID: 3),
        EditRequest(prompt: "The capital of {} is", subject: "Germany", targetNew: "Vienna", targetTrue: "Berlin", caseID: 4),
    ]

    static func runner(_ dir: URL, _ loaded: LoadedModel, steps: Int = 3) -> LifelongEval {
        var hp = EditHyperparameters.defaults(layers: loaded.config.nLayer, family: .llama)
        hp.useCovariance = false
        hp.steps = steps
        hp.templateLengths = [[5, 5]]
        let config = EvalConfig(modelPath: RealModel.path, modelSHA256: "test-model", dataPath: "facts", dataSHA256: "test-data",
                                edits: 2, seed: 9, method: .rome, layer: nil, knownFilter: false, lenient: false,
                                hyperparameters: hp)
        return LifelongEval(config: config, directory: EvalDirectory(dir.path), loaded: loaded, requests: facts) { _ in nil }
    }

    @Test(.enabled(if: RealModel.available))
    func interruptedRunResumesToTheSameResult() throws {
        let whole = try TestPaths.scratch("eval-whole"), parts = try TestPaths.scratch("eval-parts")
        defer { try? FileManager.default.removeItem(at: whole); try? FileManager.default.removeItem(at: parts) }
        let t0 = Date()
        let wholeRunner = Self.runner(whole, try LoadedModel(path: RealModel.path))
        let rows = try wholeRunner.run()
        let t1 = Date()

        let first = Self.runner(parts, try LoadedModel(path: RealModel.path))
        first.stopAfter = 1
        _ = try first.run()
        #expect(try EvalDirectory(parts.path).readLog().count == 1)
        // Published without the facts' text (as docs/results keeps it): the run resumes by case id.
        var stripped = try EvalDirectory(parts.path).readLog()
        for i in stripped.indices { (stripped[i].prompt, stripped[i].subject, stripped[i].targetNew, stripped[i].targetTrue) = (nil, nil, nil, nil) }
        try EvalDirectory(parts.path).rewriteLog(stripped)
        // A fresh process: the unedited model again, the logged edit replayed from the saved patch.
        var statuses: [String] = []
        let resumedRows = try Self.runner(parts, try LoadedModel(path: RealModel.path)).run { event in
            if case .status(let s) = event { statuses.append(s) }
        }
        // The replay reports its steps (the logged edit and its roll-back are two), then the resume point.
        #expect(statuses.filter { $0.hasPrefix("replaying") } == ["replaying the saved patch: step 1 of 2",
                                                                  "replaying the saved patch: step 2 of 2"])
        #expect(statuses.contains("resumed after edit 1 of 2"))
        print("eval N=2 on SmolLM2: \(t1.timeIntervalSince(t0)) s uninterrupted; rows \(rows)")

        let a = try EvalDirectory(whole.path).readLog(), b = try EvalDirectory(parts.path).readLog()
        #expect(a.count == 2)
        #expect(a.map(\.scores) == b.map(\.scores))
        #expect(a.map(\.ers) == b.map(\.ers) && a.map(\.ors) == b.map(\.ors))
        #expect(a.map(\.layer) == b.map(\.layer) && a.map(\.steps) == [2, 4] && b.map(\.steps) == [2, 4])
        #expect(rows == resumedRows && rows.map(\.n) == [1, 2])
        let pa = try Patch.decode(Array(try Data(contentsOf: URL(fileURLWithPath: EvalDirectory(whole.path).patchPath))))
        let pb = try Patch.decode(Array(try Data(contentsOf: URL(fileURLWithPath: EvalDirectory(parts.path).patchPath))))
        #expect(pa.id == pb.id)
        #expect(pa.steps.count == 4)
        // Edit then roll-back at the same layer; the roll-back's request is the swapped fact.
        #expect(pa.steps[1].tensor == pa.steps[0].tensor)
        let edit = try #require(pa.steps[0].edits.first?.requests.first), back = try #require(pa.steps[1].edits.first?.requests.first)
        #expect(back.targetNew == edit.targetTrue && back.targetTrue == edit.targetNew && back.prompt == edit.prompt)
        #expect(a.map(\.targetNew).contains(edit.targetNew))
        // The saved patch applied to the checkpoint (as `wilke apply` does) is the run's final model.
        let applied = try LoadedModel(checkpoint: try Checkpoint.open(RealModel.path), patches: [pa])
        let ids = try applied.encodePrompt("The capital of France is")
        let x = try applied.model.forward(ForwardBatch(sequences: [ids], logitsAt: [TokenPosition(row: 0, pos: ids.count - 1)])).logits[0]
        let y = try wholeRunner.loaded.model.forward(ForwardBatch(sequences: [ids], logitsAt: [TokenPosition(row: 0, pos: ids.count - 1)])).logits[0]
        let diff = zip(x, y).map { abs($0 - $1) }.max() ?? .infinity
        print("patched checkpoint vs the run's model: max |logit diff| \(diff)")
        #expect(diff < 1e-4)
        let summary = try Data(contentsOf: URL(fileURLWithPath: EvalDirectory(whole.path).summaryPath))
        #expect(String(decoding: summary, as: UTF8.self).contains(pa.id))
        // Timing and the edited matrices' norms are logged; the figures are written next to the summary.
        #expect(a.allSatisfy { ($0.editSeconds ?? 0) > 0 && ($0.rollbackSeconds ?? 0) > 0 })
        let w = wholeRunner.loaded.model.mlpOutputWeight(layer: a[1].layer)
        let norm = sqrt(w.reduce(0.0) { $0 + Double($1) * Double($1) })
        // The log's norm comes from the term's small products (no dense copy): equal up to f32 rounding.
        let logged = try #require(a[1].norms?[String(a[1].layer)])
        #expect(abs(logged - norm) / norm < 1e-6)
        for f in EvalPlots.files {
            let svg = try String(contentsOfFile: whole.path + "/" + f, encoding: .utf8)
            #expect(svg.hasPrefix("<?xml") && svg.contains("</svg>"))
        }
    }

    /// A crash after the patch was saved but before its log line was written: the extra steps are
    /// dropped, the edit is made again, and the run ends as if it had not crashed.
    @Test(.enabled(if: RealModel.available))
    func patchAheadOfTheLogIsRecomputed() throws {
        let dir = try TestPaths.scratch("eval-crash")
        defer { try? FileManager.default.removeItem(at: dir) }
        let d = EvalDirectory(dir.path)
        _ = try Self.runner(dir, try LoadedModel(path: RealModel.path)).run()
        let full = try d.readLog()
        let fullID = try Patch.decode(Array(try Data(contentsOf: URL(fileURLWithPath: d.patchPath)))).id
        // Keep the 4-step patch, drop the second log line and leave half of it, as a torn append.
        let firstLine = try JSONEncoder().encode(full[0])
        try (firstLine + Data("\n{\"index\":2,".utf8)).write(to: URL(fileURLWithPath: d.logPath))
        #expect(try d.readLog() == [full[0]])
        _ = try Self.runner(dir, try LoadedModel(path: RealModel.path)).run()
        let again = try d.readLog()
        #expect(again.map(\.scores) == full.map(\.scores) && again.map(\.steps) == [2, 4])
        #expect(try Patch.decode(Array(try Data(contentsOf: URL(fileURLWithPath: d.patchPath)))).id == fullID)
    }

    /// A log without text names its facts by case id only; another fact in its place is refused.
    /// `--known-filter` reports each chunk of candidates it has run (the four facts are one chunk), and
    /// what it reports is what it selected.
    @Test(.enabled(if: RealModel.available))
    func knownFilterReportsItsProgress() throws {
        let dir = try TestPaths.scratch("eval-known")
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = Self.runner(dir, try LoadedModel(path: RealModel.path))
        var config = r.config
        config.knownFilter = true
        config.edits = 1
        let runner = LifelongEval(config: config, directory: r.directory, loaded: r.loaded, requests: Self.facts) { _ in nil }
        var statuses: [String] = []
        let (stream, heldOut) = try runner.selectFacts { if case .status(let s) = $0 { statuses.append(s) } }
        #expect(stream.count == 1 && heldOut.count == 1)
        #expect(statuses == ["known-filter: 2 of 2 known facts in 4 candidates"], "\(statuses)")
    }

    @Test func strippedLogMatchesByCaseID() {
        var e = EvalLogEntry(index: 1, caseID: 2, prompt: nil, subject: nil, targetNew: nil, targetTrue: nil, layer: 3,
                             rollbackLayer: 3, scores: EditScores(es: 1, gs: 1, ls: 1), steps: 2, seconds: 1)
        #expect(LifelongEval.sameFact(e, Self.facts[1]))
        #expect(!LifelongEval.sameFact(e, Self.facts[2]))
        e.caseID = nil
        #expect(!LifelongEval.sameFact(e, Self.facts[1]))
        e.prompt = Self.facts[1].prompt; e.subject = Self.facts[1].subject; e.targetNew = Self.facts[1].targetNew
        #expect(LifelongEval.sameFact(e, Self.facts[1]) && !LifelongEval.sameFact(e, Self.facts[2]))
    }

    @Test(.enabled(if: RealModel.available))
    func differentConfigurationIsRefused() throws {
        let dir = try TestPaths.scratch("eval-config")
        defer { try? FileManager.default.removeItem(at: dir) }
        let loaded = try LoadedModel(path: RealModel.path)
        let first = Self.runner(dir, loaded)
        first.stopAfter = 0
        _ = try first.run()
        #expect {
            _ = try Self.runner(dir, loaded, steps: 4).run()
        } throws: { "\($0)".contains("different configuration (hyper-parameters)") }
    }
}
