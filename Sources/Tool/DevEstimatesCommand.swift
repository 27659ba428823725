import ArgumentParser
import Foundation
import WilKE

extension RootCommand.Dev {
    /// The fast scan's shared δ = 0 pass alone, for each request on the unedited model: one JSON line per
    /// request with every scanned layer's LA_est and its factors (how the estimate compares with exact
    /// LAs from `wilke edit --scan full --json`, without running any optimization).
    struct Estimates: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "estimates", abstract: "Print WilKE's per-layer LA estimates and their factors (JSON lines).")

        @Argument(help: "Checkpoint.") var model: String
        @Option(help: "Requests (JSONL, CounterFact or KnowEdit JSON).") var requests: String
        @OptionGroup var tuning: EditTuning

        func run() throws {
            let loaded = try LoadedModel(path: model)
            let hp = try tuning.hyperparameters(loaded, method: .wilke, layer: nil)
            let solvers = try tuning.keyStatistics(loaded, layers: hp.scanLayers, enabled: hp.useCovariance)
            let editor = Editor(loaded, hyperparameters: hp) { l in solvers[l]?.solver }
            let templates = try editor.contextTemplates()
            for r in try RequestFile.load(path: requests).requests {
                let inputs = try RomeInputs(request: r, templates: templates, tokenizer: loaded.tokenizer)
                let shared = try loaded.model.sharedScanPass(inputs, layers: hp.scanLayers, hp)
                let est = try loaded.model.layerEstimates(shared, layers: hp.scanLayers, hp,
                                                          covariance: hp.scanLayers.map { solvers[$0]?.solver })
                let layers: [[String: Any]] = est.map {
                    ["layer": $0.layer, "estimate": Double($0.estimate), "g2": Double($0.gradientNorm), "g1": Double($0.gradientL1), "h": Double($0.streamNorm), "first_order": Double($0.firstOrder),
                     "denominator": Double($0.denominator), "w": Double($0.weightNorm), "m0": Double($0.m0Norm)]
                }
                var line: [String: Any] = ["prompt": r.prompt, "subject": r.subject, "target_new": r.targetNew,
                                           "loss0": Double(shared.loss.total), "layers": layers]
                if let id = r.caseID { line["case_id"] = id }
                FileHandle.standardOutput.write(try JSONSerialization.data(withJSONObject: line, options: [.sortedKeys]) + Data("\n".utf8))
            }
        }
    }
}
