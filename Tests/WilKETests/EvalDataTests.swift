import Foundation
import Testing
import TestSupport
@testable import WilKE

/// The evaluation's inputs (CounterFact / KnowEdit files through `RequestFile`) and its log directory.
@Suite struct EvalDataTests {
    static let fullFile = TestPaths.sharedData("counterfact/counterfact_gpt2-xl_known_toxicity_flash.json")
    static let knowEditFile = TestPaths.sharedData("counterfact/counterfact-edit.json")

    @Test(.enabled(if: FileManager.default.fileExists(atPath: fullFile)))
    func fullCounterFactRecords() throws {
        let f = try RequestFile.load(path: Self.fullFile)
        #expect(f.kind == .counterfact)
        #expect(f.requests.count == 11 && f.skipped.isEmpty)
        let r = f.requests[0]
        #expect(r.caseID == 3561 && r.relationID == "P140")
        #expect(r.prompt == "{} follows the religion of" && r.subject == "Muslim")
        #expect(r.targetNew == "Christianity" && r.targetTrue == "Islam")
        #expect(r.paraphrasePrompts.count == 2 && r.neighborhoodPrompts.count == 10)
        #expect(r.neighborhoodPrompts[1] == "Averroes follows the religion of")
        #expect(r.neighborhoodAnswer == "Islam")
        #expect(f.requests.map { $0.caseID ?? -1 } == [3561, 4593, 4661, 4790, 4988, 8793, 15452, 16575, 16781, 20664, 21729])
        let back = try #require(r.swapped())
        #expect(back.targetNew == "Islam" && back.targetTrue == "Christianity" && back.prompt == r.prompt)
    }

    @Test(.enabled(if: FileManager.default.fileExists(atPath: knowEditFile)))
    func knowEditRecords() throws {
        let f = try RequestFile.load(path: Self.knowEditFile)
        #expect(f.kind == .knowedit)
        #expect(f.requests.count == 10_000 && f.skipped.isEmpty)
        let r = f.requests[0]
        #expect(r.caseID == 0 && r.prompt == "The mother tongue of {} is" && r.subject == "Danielle Darrieux")
        #expect(r.filledPrompt == "The mother tongue of Danielle Darrieux is")
        #expect(r.targetNew == "English" && r.targetTrue == "French")
        #expect(r.paraphrasePrompts == ["Where Danielle Darrieux is from, people speak the language of"])
        #expect(r.neighborhoodPrompts == ["Michel Rocard is a native speaker of"] && r.neighborhoodAnswer == "French")
        let last = f.requests[9999]
        #expect(last.caseID == 21918 && last.prompt == "{} works as" && last.targetTrue == "actor")
    }

    /// Record 1 lacks target_new, record 3 has a subject missing from its prompt.
    static let malformed = """
        [{"case_id": 0, "prompt": "The capital of France is", "subject": "France", "target_new": "Rome", "ground_truth": "Paris"},
         {"case_id": 1, "prompt": "The capital of Italy is", "subject": "Italy", "ground_truth": "Rome"},
         {"case_id": 2, "prompt": "Tokyo is the capital of", "subject": "Tokyo", "target_new": "China", "ground_truth": "Japan"},
         {"case_id": 3, "prompt": "The capital of Spain is", "subject": "Portugal", "target_new": "Lisbon", "ground_truth": "Madrid"}]
        """

    @Test func malformedRecordsNamedByIndexAndSkippedOnlyWhenLenient() throws {
        let data = Data(Self.malformed.utf8)
        #expect {
            _ = try RequestFile.parse(data, source: "facts.json")
        } throws: { e in
            "\(e)".hasPrefix("facts.json: record 1:")
        }
        let f = try RequestFile.parse(data, source: "facts.json", lenient: true)
        #expect(f.kind == .knowedit)
        #expect(f.requests.map(\.caseID) == [0, 2])
        #expect(f.skipped.map(\.index) == [1, 3])
        #expect(f.skipped[1].reason.contains("Portugal"))
    }

    @Test func logAppendsAndDropsATornLastLine() throws {
        let dir = try TestPaths.scratch("evallog")
        defer { try? FileManager.default.removeItem(at: dir) }
        let d = EvalDirectory(dir.path)
        func entry(_ i: Int) -> EvalLogEntry {
            EvalLogEntry(index: i, caseID: 10 + i, prompt: "{} is in", subject: "S\(i)", targetNew: "A", targetTrue: "B",
                         layer: i, rollbackLayer: i, scores: EditScores(es: 1, gs: 0.5, ls: nil), ers: i == 1 ? 1 : nil,
                         ors: i == 1 ? 0.5 : nil, steps: 2 * i, seconds: 1.5)
        }
        try d.append(entry(1))
        try d.append(entry(2))
        #expect(try d.readLog() == [entry(1), entry(2)])
        // A crash mid-append leaves a partial line: it is dropped, and the rewrite removes it.
        let h = try #require(FileHandle(forWritingAtPath: d.logPath))
        h.seekToEndOfFile()
        h.write(Data("{\"index\":3,\"ca".utf8))
        h.closeFile()
        #expect(try d.readLog() == [entry(1), entry(2)])
        try d.rewriteLog(try d.readLog())
        try d.append(entry(3))
        #expect(try d.readLog() == [entry(1), entry(2), entry(3)])
        // A bad line that is not the last is an error naming the line.
        try Data("garbage\n".utf8 + (try Data(contentsOf: URL(fileURLWithPath: d.logPath)))).write(to: URL(fileURLWithPath: d.logPath))
        #expect { _ = try d.readLog() } throws: { "\($0)".contains("line 1") }
    }

    @Test func configDifferencesAreNamed() {
        let hp = EditHyperparameters(romeLayer: 5, scanLayers: [0, 1])
        let a = EvalConfig(modelPath: "m.gguf", modelSHA256: "aa", dataPath: "d.json", dataSHA256: "dd", edits: 4, seed: 9,
                           method: .rome, layer: nil, knownFilter: true, lenient: false, hyperparameters: hp)
        var b = a
        b.modelPath = "elsewhere/m.gguf"  // the same model under another path is the same run
        #expect(a.differences(from: b).isEmpty)
        b.seed = 10
        b.hyperparameters.steps = 3
        b.dataSHA256 = "ee"
        #expect(a.differences(from: b) == ["data file", "seed", "hyper-parameters"])
    }
}
