import ArgumentParser
import Foundation
import Formats
import WilKE

extension RootCommand {
    struct Eval: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run the paper's lifelong-editing evaluation (edit, score, roll back; S, ES, GS, LS, ERS, ORS).",
            discussion: """
                The facts of --data (CounterFact or KnowEdit JSON, or JSONL with target_true) are shuffled with \
                --seed; the first N usable facts are edited one after another, each scored right after its edit (ES, \
                GS, LS) and then rolled back (targets swapped, same layer) without restoring the weights. At \
                checkpoints 1, 2, 4, ..., N the edited facts (ERS) and the next N held-out facts (ORS) are checked \
                for their original object. --out DIR receives config.json, edits.jsonl, summary.json and run.wpatch \
                (`wilke apply` reproduces the final model), and the figures metrics.svg (scores against edits, log \
                scale), norms.svg (norm of each edited weight matrix against edits) and layers.svg (layers chosen). Running again with the same DIR and the same settings \
                resumes after the last logged edit.

                  wilke eval model.gguf --data counterfact.json --edits 64 --method wilke --known-filter --out runs/w64
                  wilke eval model.gguf --data counterfact.json --edits 128 --known-filter --preserve null-space \\
                      --norm-anchor --out runs/wilke-ns-nas-128
                  wilke eval model.gguf --data counterfact.json --edits 128 --known-filter --method memit \\
                      --preserve null-space --out runs/alphaedit-128
                  wilke eval model.gguf --data counterfact-edit.json counterfact-train.json --edits 256 \\
                      --known-filter --preserve null-space --out runs/wilke-ns-256

                With --preserve null-space the keys of every edit and roll-back so far are kept per layer (AlphaEdit's \
                accumulation); with --norm-anchor the anchor's reference edits are the shuffled facts after the \
                stream and the held-out set.
                """)

        @Argument(help: "Checkpoint: .gguf, .safetensors, or a Hugging Face directory.")
        var model: String

        @Option(parsing: .upToNextOption,
                help: "Facts: CounterFact or KnowEdit JSON, or JSONL with target_true; several files are joined in order, a case_id seen before dropped.")
        var data: [String]
        @Option(help: "Number of edits N (the held-out set has N facts too).") var edits: Int
        @Option(help: "wilke (scan layers), rome (fixed layer) or memit (spread over --memit-layers).") var method: EditMethod = .wilke
        @Option(help: "Edit at this layer (both methods; default: rome's layer, or wilke's scan).") var layer: Int?
        @Option(help: "Seed of the fact order.") var seed: UInt64 = 9
        @Flag(name: .customLong("known-filter"), help: "Keep only facts the unedited model answers with target_true.") var knownFilter = false
        @Flag(help: "Skip malformed records of --data (reported) instead of failing.") var lenient = false
        @Option(help: "Output directory (resumed if it holds the same run).") var out: String
        @OptionGroup var tuning: EditTuning

        func validate() throws {
            guard edits >= 1 else { throw ValidationError("--edits must be at least 1") }
            guard !data.isEmpty else { throw ValidationError("give at least one --data file") }
            if method == .memit, layer != nil { throw ValidationError("--layer goes with rome or wilke; use --memit-layers for memit") }
        }

        func run() throws {
            var requests: [EditRequest] = [], seen = Set<Int>(), dropped = 0
            for path in data {
                let file = try naming(path) { try RequestFile.load(path: path, lenient: lenient) }
                for s in file.skipped { printErr((data.count > 1 ? "\(path): " : "") + "skipped record \(s.index): \(s.reason)") }
                // Only a case_id an EARLIER file has is dropped: one file's records are used as they are.
                for r in file.requests {
                    if let id = r.caseID, seen.contains(id) { dropped += 1; continue }
                    requests.append(r)
                }
                seen.formUnion(file.requests.compactMap(\.caseID))
            }
            if dropped > 0 { printErr("dropped \(dropped) record(s) whose case_id an earlier --data file has") }
            // One file keeps its own path and digest (runs saved before several files existed resume); several
            // are named together and identified by the digest of their digests, in order.
            let digests = try data.map { path in try naming(path) { try EvalConfig.fileDigest(path) } }
            let dataPath = data.joined(separator: ",")
            let dataDigest = digests.count == 1 ? digests[0] : EvalConfig.digest(of: digests)
            let loaded = try naming(model) { try LoadedModel(path: model) }
            let hp = try tuning.hyperparameters(loaded, method: method, layer: layer)
            let algorithm = try EditAlgorithm(method: method, hyperparameters: hp, layer: method == .memit ? nil : layer)
            for l in algorithm.layers where l < 0 || l >= loaded.config.nLayer {
                throw CLIError("layer \(l) does not exist: \(model) has layers 0-\(loaded.config.nLayer - 1)")
            }
            let config = EvalConfig(modelPath: model, modelSHA256: EvalConfig.modelDigest(loaded.checkpoint),
                                    dataPath: dataPath, dataSHA256: dataDigest,
                                    edits: edits, seed: seed, method: method, layer: layer, knownFilter: knownFilter,
                                    lenient: lenient, hyperparameters: hp)
            let runner = LifelongEval(config: config, directory: EvalDirectory(out), loaded: loaded, requests: requests,
                                      statistics: try tuning.statisticsSource(loaded, algorithm: algorithm, hp, resident: true))
            runner.scanWorkers = BLAS.threads  // the tool runs nothing else beside the evaluation
            var spent: [Double] = []
            let rows = try naming(out) {
                try runner.run { event in
                    switch event {
                    case .status(let s): printErr(s)
                    case .edit(let done, let total, let e):
                        // From this session's edits only (resumed ones were not timed here).
                        spent.append(e.seconds)
                        let eta = spent.reduce(0, +) / Double(spent.count) * Double(total - done)
                        var line = String(format: "edit %d/%d: layer %d, ES %.0f", done, total, e.layer, e.scores.es)
                        if let g = e.scores.gs { line += String(format: ", GS %.2f", g) }
                        if let l = e.scores.ls { line += String(format: ", LS %.2f", l) }
                        if let a = e.ers, let b = e.ors { line += String(format: ", ERS %.3f, ORS %.3f", a, b) }
                        if let a = e.editSeconds, let b = e.rollbackSeconds { line += String(format: "; edit %.1f s, roll-back %.1f s", a, b) }
                        printErr(line + String(format: "; %.1f s in all, ETA %@", e.seconds, formatSeconds(eta)))
                    }
                }
            }
            print(EvalTable.text(rows))
            printErr("figures: " + EvalPlots.files.map { out + "/" + $0 }.joined(separator: ", "))
        }
    }
}

/// The paper's Table 1 layout: one row per checkpoint.
enum EvalTable {
    static func text(_ rows: [CheckpointScores]) -> String {
        func pad(_ s: String, _ w: Int) -> String { String(repeating: " ", count: max(0, w - s.count)) + s }
        var lines = [([pad("n", 6)] + ["S", "ES", "GS", "LS", "ERS", "ORS"].map { pad($0, 7) }).joined(separator: " ")]
        for r in rows {
            lines.append(String(format: "%6d %7.4f %7.4f %7.4f %7.4f %7.4f %7.4f", r.n, r.s, r.es, r.gs, r.ls, r.ers, r.ors))
        }
        return lines.joined(separator: "\n")
    }
}
