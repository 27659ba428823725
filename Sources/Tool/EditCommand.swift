import ArgumentParser
import Foundation
import Formats
import Patch
import WilKE

extension RootCommand {
    struct Edit: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write facts into a model with WilKE (or ROME, MEMIT) and save the edits as a patch.",
            discussion: """
                One fact from --prompt/--subject/--target, or many from --requests (JSONL of {prompt, subject,
                target_new[, target_true]}, or CounterFact / KnowEdit JSON). Requests are applied one after
                another, each computed on the model as already edited, and written as one patch (ordered steps).
                The model file is never modified: `wilke apply` writes an edited copy.

                  wilke edit model.gguf --prompt "{} is located in the city of" --subject "The Eiffel Tower" \\
                      --target "Rome" -o eiffel.wpatch
                  wilke edit model.gguf --requests samples/edits.jsonl --method rome -o facts.wpatch --json
                  wilke edit model.gguf --requests samples/edits.jsonl --scan full -o facts-full.wpatch
                  wilke edit model.gguf --prompt "{} is located in the city of" --subject "The Eiffel Tower" \\
                      --target "Rome" --method memit --memit-layers 3-7 -o eiffel-memit.wpatch
                  wilke edit model.gguf --requests samples/edits.jsonl --preserve null-space -o facts-ns.wpatch
                  wilke edit model.gguf --requests samples/edits.jsonl --method memit --preserve null-space \\
                      -o facts-alphaedit.wpatch                      # memit + null-space = AlphaEdit
                  wilke edit model.gguf --requests samples/edits.jsonl --norm-anchor -o facts-nas.wpatch
                  wilke edit model.gguf --requests samples/edits.jsonl --la-reference original -o facts-orig.wpatch

                --preserve null-space projects every update onto the null space of the layer's key statistics
                (eigenvalues below --null-space-threshold) and keeps the keys of the run's earlier edits, so later
                edits avoid overwriting them. --norm-anchor rescales each solved value vector to the mean norm of
                reference edits (the first --anchor-facts requests) on the unedited model.
                """)

        @Argument(help: "Checkpoint: .gguf, .safetensors, or a Hugging Face directory.")
        var model: String

        @Option(help: "Prompt with \"{}\" where the subject goes.") var prompt: String?
        @Option(help: "The subject, as it appears in the prompt.") var subject: String?
        @Option(help: "The new target.") var target: String?
        @Option(name: .customLong("target-true"), help: "The current answer (reported before/after).") var targetTrue: String?
        @Option(help: "Requests file: JSONL, CounterFact or KnowEdit JSON.") var requests: String?
        @Flag(help: "Skip malformed records of --requests (reported) instead of failing.") var lenient = false
        @Option(name: .shortAndLong, help: "Output patch file (.wpatch).") var output: String
        @Flag(help: "Overwrite the output if it exists.") var force = false

        @Option(help: "wilke (scan layers, edit the one with the smallest relative update), rome (fixed layer) or memit (spread over --memit-layers).")
        var method: EditMethod = .wilke
        @Option(help: "The layer for --method rome (default: the architecture's, see docs/ALGORITHM_NOTES.md).") var layer: Int?
        @OptionGroup var tuning: EditTuning
        @Flag(name: .customLong("allow-known"), help: "Edit even when the model already gives the target.") var allowKnown = false
        @Flag(help: "Print the report as JSON on stdout.") var json = false

        func validate() throws {
            if requests == nil {
                guard prompt != nil, subject != nil, target != nil else {
                    throw ValidationError("give --prompt, --subject and --target, or --requests FILE")
                }
            } else if prompt != nil || subject != nil || target != nil {
                throw ValidationError("--requests cannot be combined with --prompt/--subject/--target")
            }
            if method == .wilke, layer != nil { throw ValidationError("--layer goes with --method rome; use --scan-layers for wilke") }
            if method != .wilke, tuning.scanTop != nil { throw ValidationError("--scan-top goes with --method wilke") }
            if method != .wilke, tuning.scanMargin != nil { throw ValidationError("--scan-margin goes with --method wilke") }
            if method == .memit, layer != nil { throw ValidationError("--layer goes with --method rome; use --memit-layers for memit") }
        }

        func run() throws {
            if !force, FileManager.default.fileExists(atPath: output) {
                throw CLIError("\(output): output already exists (pass --force to overwrite)")
            }
            let list = try loadRequests()
            let loaded = try naming(model) { try LoadedModel(path: model) }
            let hp = try tuning.hyperparameters(loaded, method: method, layer: layer)
            let algorithm = try EditAlgorithm(method: method, hyperparameters: hp)
            for l in algorithm.layers where l < 0 || l >= loaded.config.nLayer {
                throw CLIError("layer \(l) does not exist: \(model) has layers 0-\(loaded.config.nLayer - 1)")
            }
            let editor = Editor(loaded, hyperparameters: hp, statistics: try tuning.statisticsSource(loaded, algorithm: algorithm, hp, resident: false))
            editor.scanWorkers = BLAS.threads  // the tool runs nothing else beside an edit
            editor.templateCache = TemplateCache()  // the model's templates are sampled on its first edit only
            // NAS's reference facts: the run's own requests, each optimized (not applied) on the unedited model.
            editor.anchorRequests = list
            var reports: [EditReport] = [], flops: [Int] = []
            for (i, r) in list.enumerated() {
                printErr("edit \(i + 1)/\(list.count): \"\(r.filledPrompt)\" -> \"\(r.targetNew)\" (\(method.rawValue))")
                let before = BLAS.operations
                let report = try editor.edit(r, algorithm: algorithm, allowKnownTarget: allowKnown) { printErr("  " + $0) }
                flops.append(BLAS.operations - before)
                reports.append(report)
                printErr(EditReportText.line(report))
            }
            let patch = editor.patch()
            let bytes = try patch.encode()
            let out = try OutputFile(path: output, overwrite: force)
            try out.write(bytes)
            try out.commit()
            printErr("wrote \(output): \(patch.steps.count) step(s), \(bytes.count) bytes, id \(patch.id.prefix(16))")
            if json { print(try EditReportText.json(reports, flops: flops, patch: patch, path: output)) }
        }

        func loadRequests() throws -> [EditRequest] {
            if let requests {
                let loaded = try naming(requests) { try RequestFile.load(path: requests, lenient: lenient) }
                for s in loaded.skipped { printErr("skipped record \(s.index): \(s.reason)") }
                guard !loaded.requests.isEmpty else { throw CLIError("\(requests): no usable requests") }
                return loaded.requests
            }
            guard let prompt, let subject, let target else { return [] }
            var p = prompt
            if !p.contains("{}") {
                guard let range = p.range(of: subject) else {
                    throw CLIError("subject \"\(subject)\" not found in the prompt \"\(prompt)\" (mark its place with {})")
                }
                p = p.replacingCharacters(in: range, with: "{}")
            }
            let r = EditRequest(prompt: p, subject: subject, targetNew: target, targetTrue: targetTrue)
            try r.validate()
            return [r]
        }

        /// C_l for every layer the edit may touch, from the cache or computed in one pass.
    }
}

extension EditMethod: ExpressibleByArgument {}
extension ScanMode: ExpressibleByArgument {}
extension Preservation: ExpressibleByArgument {}
extension LAReference: ExpressibleByArgument {}

/// The edit report, as text lines (stderr) and JSON (stdout).
enum EditReportText {
    static func line(_ r: EditReport) -> String {
        var s = String(format: "  layer %d, loss %.3f -> %.3f (%d steps), p(new) %.4f -> %.4f", r.layer,
                       r.losses.first ?? 0, r.losses.last ?? 0, r.adamSteps, r.newBefore, r.newAfter)
        if let a = r.oldBefore, let b = r.oldAfter { s += String(format: ", p(old) %.4f -> %.4f", a, b) }
        return s + String(format: ", %.1f s", r.seconds)
    }

    /// - flops: BLAS floating-point operations of each edit (the bulk of its arithmetic), in order
    static func json(_ reports: [EditReport], flops: [Int], patch: Patch, path: String) throws -> String {
        let edits: [[String: Any]] = zip(reports, flops).map { r, f in
            var o: [String: Any] = [
                "prompt": r.request.prompt, "subject": r.request.subject, "target_new": r.request.targetNew,
                "method": r.method.rawValue, "layer": r.layer, "losses": r.losses.map(Double.init),
                "adam_steps": r.adamSteps, "p_new_before": r.newBefore, "p_new_after": r.newAfter, "seconds": r.seconds,
                "blas_flops": f,
                "relative_update": Dictionary(uniqueKeysWithValues: r.relativeSizes.map { (String($0.key), Double($0.value)) }),
            ]
            if let s = r.scan { o["scan"] = s.rawValue }
            if let e = r.estimates { o["estimates"] = Dictionary(uniqueKeysWithValues: e.map { (String($0.key), Double($0.value)) }) }
            if let t = r.request.targetTrue { o["target_true"] = t }
            if let a = r.oldBefore { o["p_old_before"] = a }
            if let b = r.oldAfter { o["p_old_after"] = b }
            return o
        }
        let root: [String: Any] = ["patch": path, "patch_id": patch.id, "steps": patch.steps.count, "edits": edits]
        return String(decoding: try JSONSerialization.data(withJSONObject: root, options: [.sortedKeys, .prettyPrinted]), as: UTF8.self)
    }
}
