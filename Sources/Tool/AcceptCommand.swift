import ArgumentParser
import Foundation
import WilKE

extension RootCommand.Dev {
    /// The real-model acceptance run of `make accept`: every fact edited on its own (the base model is
    /// restored after each), then the fact's prompt and a fixed set of unrelated prompts are checked by
    /// greedy decoding. Prints one JSON line per fact and a summary line.
    struct Accept: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "accept", abstract: "Edit each fact alone and check it and unrelated prompts (JSON lines).")

        @Argument(help: "Checkpoint.") var model: String
        @Option(help: "Facts (JSONL).") var requests: String
        @Option(help: "Unrelated prompts, one per line.") var unrelated: String
        @Option(help: "wilke, rome or memit.") var method: EditMethod = .wilke
        @Option(help: "Only the first N facts.") var limit: Int?
        @Flag(name: .customLong("no-covariance"), help: "C = I.") var noCovariance = false
        @Option(help: "WilKE's scan: fast or full.") var scan: ScanMode = .fast
        @Option(name: .customLong("scan-top"), help: "Layers the fast scan optimizes exactly.") var scanTop: Int?

        func run() throws {
            let loaded = try LoadedModel(path: model)
            let facts = Array(try RequestFile.load(path: requests).requests.prefix(limit ?? Int.max))
            let prompts = try String(contentsOfFile: unrelated, encoding: .utf8).split(separator: "\n").map(String.init).filter { !$0.isEmpty }
            var hp = EditHyperparameters.defaults(layers: loaded.config.nLayer, family: loaded.config.family)
            hp.useCovariance = !noCovariance
            hp.scanMode = scan
            if let scanTop { hp.scanTop = max(1, scanTop) }
            let algorithm = try EditAlgorithm(method: method, hyperparameters: hp)
            var found: [Int: KeyCovariance] = [:]
            if hp.useCovariance {
                let stats = try KeyStatistics.compute(model: loaded.model, tokenizer: loaded.tokenizer,
                                                      fingerprint: ModelFingerprint(checkpoint: loaded.checkpoint, nLayer: loaded.config.nLayer),
                                                      options: StatsOptions(layers: algorithm.layers), cache: StatsCache())
                for s in stats { found[s.covariance.layer] = s.covariance }
            }
            let solvers = found
            func greedy(_ text: String) throws -> Int { try loaded.nextTokens(after: try loaded.encodePrompt(text), top: 1)[0].id }
            let before = try prompts.map(greedy)
            let original = loaded.model.mlpOutputSnapshot()  // references to the unedited weights, no copy
            var templates: [String]?
            var success = 0, kept = 0, checked = 0
            for (i, fact) in facts.enumerated() {
                let editor = Editor(loaded, hyperparameters: hp, statistics: KeyStatisticsSource(solve: { solvers[$0]?.solver }))
                editor.scanWorkers = BLAS.threads
                if let templates { editor.adoptTemplates(templates) } else { templates = try editor.contextTemplates() }
                let report = try editor.edit(fact, algorithm: algorithm, allowKnownTarget: true)
                let target = loaded.tokenizer.encode(fact.targetNew.hasPrefix(" ") ? fact.targetNew : " " + fact.targetNew, addSpecial: false)
                let ok = try editor.greedyMatches(try loaded.encodePrompt(fact.filledPrompt), target)
                let after = try prompts.map(greedy)
                let same = zip(before, after).filter { $0 == $1 }.count
                success += ok ? 1 : 0; kept += same; checked += prompts.count
                let line: [String: Any] = ["fact": i, "prompt": fact.filledPrompt, "target_new": fact.targetNew, "layer": report.layer,
                                           "success": ok, "unrelated_kept": same, "unrelated": prompts.count,
                                           "p_new_after": report.newAfter, "seconds": report.seconds]
                FileHandle.standardOutput.write(try JSONSerialization.data(withJSONObject: line, options: [.sortedKeys]) + Data("\n".utf8))
                // Every edited layer gets its original back: the edit's terms are dropped.
                try loaded.model.restore(original)
            }
            let summary: [String: Any] = ["summary": true, "method": method.rawValue, "facts": facts.count, "success": success,
                                          "unrelated_kept": kept, "unrelated_checked": checked]
            print(String(decoding: try JSONSerialization.data(withJSONObject: summary, options: [.sortedKeys]), as: UTF8.self))
        }
    }
}
