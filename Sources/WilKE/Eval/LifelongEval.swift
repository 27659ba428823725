import Foundation
import Formats
import Patch

/// The paper's lifelong-editing protocol (ALGORITHM.md §4.2): edit a fact, score it on its own record,
/// roll it back (targets swapped, same layer) without restoring the weights, and at checkpoints
/// {1, 2, 4, …, N} measure how many edited (ERS) and held-out (ORS) facts keep their original object.
/// Every finished edit is logged and the run's patch saved, so a stopped run resumes where it stopped.
public final class LifelongEval {
    public enum Event {
        /// Status line (selection, resume, checkpoint results).
        case status(String)
        /// Edit `done` of `total` finished.
        case edit(done: Int, total: Int, entry: EvalLogEntry)
    }

    public let config: EvalConfig
    public let directory: EvalDirectory
    /// The model as loaded from the checkpoint, before any edit (the runner edits it in place).
    public let loaded: LoadedModel
    public let requests: [EditRequest]
    /// C_l's solve and (with `--preserve null-space`) null space per layer; each run's editor gets its
    /// own preserved-key accumulator.
    public let statistics: KeyStatisticsSource
    /// Test hook: stop (as if interrupted) after this many edits in total.
    public var stopAfter: Int?
    /// The editor's `scanWorkers` (1: sequential scan; see there before raising it).
    public var scanWorkers = 1

    /// - Parameters:
    ///   - requests: the whole data file, in file order (the runner shuffles with `config.seed`).
    ///   - covariance: C_l solver per layer, as for `Editor` (nil: C = I).
    public convenience init(config: EvalConfig, directory: EvalDirectory, loaded: LoadedModel, requests: [EditRequest],
                            covariance: @escaping @Sendable (Int) throws -> CovarianceSolve?) {
        self.init(config: config, directory: directory, loaded: loaded, requests: requests,
                  statistics: KeyStatisticsSource(solve: covariance))
    }

    public init(config: EvalConfig, directory: EvalDirectory, loaded: LoadedModel, requests: [EditRequest],
                statistics: KeyStatisticsSource) {
        self.config = config
        self.directory = directory
        self.loaded = loaded
        self.requests = requests
        self.statistics = statistics
    }

    /// Fisher–Yates with SplitMix64, so an order depends on the seed only (not on the Swift version).
    public static func shuffled<T>(_ items: [T], seed: UInt64) -> [T] {
        var out = items
        var rng = SeededGenerator(seed: seed)
        if out.count > 1 {
            for i in stride(from: out.count - 1, to: 0, by: -1) {
                out.swapAt(i, Int(rng.next() % UInt64(i + 1)))
            }
        }
        return out
    }

    /// The edit stream and the held-out set: the first N and next N usable facts of the shuffled list
    /// (usable: has target_true, and with the known filter, is answered exactly by the unedited model).
    /// With `--known-filter`, `progress` gets a status line per chunk of 64 candidates checked: the filter
    /// runs the model on every candidate until 2N known facts are found, minutes for N = 256.
    public func selectFacts(progress: ((Event) -> Void)? = nil) throws -> (stream: [EditRequest], heldOut: [EditRequest]) {
        let n = config.edits
        let candidates = LifelongEval.shuffled(requests, seed: config.seed).filter { $0.targetTrue != nil }
        var chosen: [EditRequest] = []
        if config.knownFilter {
            let probe = ExactMatch(loaded)
            var start = 0
            while chosen.count < 2 * n, start < candidates.count {
                let chunk = Array(candidates[start ..< min(start + 64, candidates.count)])
                chosen += try probe.known(chunk)
                start += chunk.count
                progress?(.status("known-filter: \(min(chosen.count, 2 * n)) of \(2 * n) known facts in \(start) candidates"))
            }
        } else {
            chosen = Array(candidates.prefix(2 * n))
        }
        guard chosen.count >= 2 * n else {
            let what = config.knownFilter ? "known facts" : "facts with a target_true"
            throw WilKEError.invalidRequestFile(path: config.dataPath,
                                                reason: "only \(chosen.count) \(what) for \(n) edits (the protocol needs \(2 * n): the edit stream and as many held-out facts)")
        }
        return (Array(chosen[0 ..< n]), Array(chosen[n ..< 2 * n]))
    }

    /// NAS's reference facts: the shuffled facts after the stream and the held-out set (never edited
    /// in the run and never scored), in order.
    func anchorFacts(excluding used: [EditRequest]) -> [EditRequest] {
        let taken = Set(used.map { "\($0.prompt)\u{0}\($0.subject)\u{0}\($0.targetNew)" })
        return LifelongEval.shuffled(requests, seed: config.seed).filter { !taken.contains("\($0.prompt)\u{0}\($0.subject)\u{0}\($0.targetNew)") }
    }

    /// Runs (or resumes) the protocol; returns the table rows at the checkpoints reached.
    public func run(progress: ((Event) -> Void)? = nil) throws -> [CheckpointScores] {
        try directory.create()
        var log: [EvalLogEntry] = []
        if let stored = try directory.readConfig() {
            let diff = stored.differences(from: config)
            guard diff.isEmpty else {
                throw WilKEError.io(path: directory.path, reason: "holds a run with a different configuration (\(diff.joined(separator: ", "))); use another directory")
            }
            log = try directory.readLog()
        } else {
            if FileManager.default.fileExists(atPath: directory.logPath) {
                throw WilKEError.io(path: directory.path, reason: "has an edit log but no config.json; use another directory")
            }
            try directory.writeConfig(config)
        }
        let (stream, heldOut) = try selectFacts(progress: progress)
        progress?(.status("\(stream.count) edits, \(heldOut.count) held-out facts; \(config.hyperparameters.describe(config.method, layer: config.layer))"))
        let editor = Editor(loaded, hyperparameters: config.hyperparameters, statistics: statistics)
        editor.scanWorkers = scanWorkers
        // The context templates come from the unedited model, also when resuming (MEMIT's too).
        _ = try editor.contextTemplates()
        if config.method == .memit { _ = try editor.memitContextTemplates() }
        if config.hyperparameters.normAnchor { editor.anchorRequests = anchorFacts(excluding: stream + heldOut) }
        if !log.isEmpty {
            try resume(editor, log: log, stream: stream, progress: progress)
            progress?(.status("resumed after edit \(log.count) of \(stream.count)"))
        }
        let probe = ExactMatch(loaded)
        let checkpoints = Set(EvalMetrics.checkpoints(upTo: stream.count))
        while log.count < stream.count {
            if let stop = stopAfter, log.count >= stop { break }
            let i = log.count
            let start = Date()
            let fact = stream[i]
            // The reference edits without checking whether the model already gives target_new.
            let report = try editor.edit(fact, method: config.method, layer: config.layer, allowKnownTarget: true)
            let scores = try probe.scores(fact)
            guard let back = fact.swapped() else { preconditionFailure("selected facts have a target_true") }
            let rollback = try editor.edit(back, method: config.method, layer: report.layer, allowKnownTarget: true)
            var entry = EvalLogEntry(index: i + 1, caseID: fact.caseID, prompt: fact.prompt, subject: fact.subject,
                                     targetNew: fact.targetNew, targetTrue: fact.targetTrue ?? "", layer: report.layer,
                                     rollbackLayer: rollback.layer, scores: scores, ers: nil, ors: nil, steps: 0, seconds: 0)
            if checkpoints.contains(i + 1) {
                entry.ers = try probe.retention(Array(stream[0 ... i]))
                entry.ors = try probe.retention(heldOut)
            }
            let patch = editor.patch()
            entry.steps = patch.steps.count
            entry.seconds = Date().timeIntervalSince(start)
            entry.editSeconds = report.seconds
            entry.rollbackSeconds = rollback.seconds
            entry.norms = editedNorms(patch)
            if config.method == .wilke {
                entry.relativeSizes = Dictionary(uniqueKeysWithValues: report.relativeSizes.map { (String($0.key), Double($0.value)) })
                entry.estimates = report.estimates.map { e in Dictionary(uniqueKeysWithValues: e.map { (String($0.key), Double($0.value)) }) }
            }
            // Patch first: a log line never points past the saved patch.
            try directory.writeAtomically(try patch.encode(), to: directory.patchPath)
            try directory.append(entry)
            log.append(entry)
            // The summary and figures follow every edit, so a stopped run shows what it has measured.
            try writeSummary(LifelongEval.table(log), log: log, total: stream.count, patchID: patch.id)
            progress?(.edit(done: log.count, total: stream.count, entry: entry))
        }
        let rows = LifelongEval.table(log)
        try writeSummary(rows, log: log, total: stream.count, patchID: editor.patch().id)
        return rows
    }

    /// Re-applies the logged edits from the saved patch after checking the log matches the stream.
    func resume(_ editor: Editor, log: [EvalLogEntry], stream: [EditRequest], progress: ((Event) -> Void)?) throws {
        guard log.count <= stream.count else {
            throw WilKEError.io(path: directory.logPath, reason: "logs \(log.count) edits but the run has \(stream.count)")
        }
        for (e, fact) in zip(log, stream) where !Self.sameFact(e, fact) {
            throw WilKEError.io(path: directory.logPath, reason: "edit \(e.index) is not the stream's fact \"\(fact.filledPrompt)\"")
        }
        guard let data = FileManager.default.contents(atPath: directory.patchPath) else {
            throw WilKEError.io(path: directory.patchPath, reason: "the run's patch is missing")
        }
        let saved = try Patch.decode(Array(data))
        let steps = log.last?.steps ?? 0
        guard saved.steps.count >= steps else {
            throw WilKEError.io(path: directory.patchPath, reason: "has \(saved.steps.count) steps but the log needs \(steps)")
        }
        // A crash between saving the patch and logging leaves extra steps: they are recomputed.
        var prefix = saved
        prefix.steps = Array(saved.steps.prefix(steps))
        // A status line per twentieth of the steps: enough to see a long replay move, not one per step.
        let every = max(1, steps / 20)
        try editor.replay(prefix) { done, total in
            if done % every == 0 || done == total { progress?(.status("replaying the saved patch: step \(done) of \(total)")) }
        }
        // Drops a torn last line, if any, before new lines are appended.
        try directory.rewriteLog(log)
    }

    /// A logged edit is the stream's fact: by its text, or by its case id when the log was published
    /// without text (scripts/publish_run.py), so a run copied into docs/results resumes on another machine.
    static func sameFact(_ e: EvalLogEntry, _ fact: EditRequest) -> Bool {
        guard let prompt = e.prompt, let subject = e.subject, let targetNew = e.targetNew else {
            return e.caseID != nil && e.caseID == fact.caseID
        }
        return prompt == fact.prompt && subject == fact.subject && targetNew == fact.targetNew
    }

    /// Table rows at each checkpoint the log reaches (entries carrying ERS/ORS).
    public static func table(_ log: [EvalLogEntry]) -> [CheckpointScores] {
        log.indices.compactMap { i in
            guard let ers = log[i].ers, let ors = log[i].ors else { return nil }
            return EvalMetrics.checkpoint(edits: log[...i].map(\.scores), ers: ers, ors: ors)
        }
    }

    /// ‖W_l‖_F of each down-projection the patch has touched so far, from the model's current weights.
    func editedNorms(_ patch: Patch) -> [String: Double] {
        var out: [String: Double] = [:]
        for step in patch.steps {
            let parts = step.tensor.split(separator: ".")
            guard parts.count == 4, let l = Int(parts[1]), out[String(l)] == nil else { continue }
            out[String(l)] = loaded.model.mlpOutputNorm(layer: l)
        }
        return out
    }

    struct Summary: Codable {
        /// What produced the edits, in one line (`EditHyperparameters.describe`).
        var algorithm: String?
        var config: EvalConfig
        var finishedEdits: Int
        var totalEdits: Int
        var patchID: String
        var checkpoints: [CheckpointScores]
        /// Medians over the logged edits that were timed (wall seconds of one edit / one roll-back).
        var medianEditSeconds: Double?
        var medianRollbackSeconds: Double?
    }

    static func median(_ xs: [Double]) -> Double? {
        guard !xs.isEmpty else { return nil }
        let s = xs.sorted(), m = s.count / 2
        return s.count % 2 == 1 ? s[m] : (s[m - 1] + s[m]) / 2
    }

    func writeSummary(_ rows: [CheckpointScores], log: [EvalLogEntry], total: Int, patchID: String) throws {
        let s = Summary(algorithm: config.hyperparameters.describe(config.method, layer: config.layer), config: config, finishedEdits: log.count, totalEdits: total, patchID: patchID, checkpoints: rows,
                        medianEditSeconds: Self.median(log.compactMap(\.editSeconds)),
                        medianRollbackSeconds: Self.median(log.compactMap(\.rollbackSeconds)))
        try directory.writeAtomically(try EvalDirectory.encode(s, pretty: true), to: directory.summaryPath)
        for (file, svg) in EvalPlots.render(log, rows: rows, method: config.method) {
            try directory.writeAtomically(Array(svg.utf8), to: directory.path + "/" + file)
        }
    }
}
