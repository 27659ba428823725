import ArgumentParser
import Formats
import Patch

extension RootCommand {
    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check whether a patch applies cleanly to a checkpoint, is already applied, or conflicts.",
            discussion: """
                Makes every check `apply` makes before writing (model format and architecture, the checkpoint's
                record, tensor names, types, shapes, layouts, and the SHA-256 of each touched tensor) without
                writing anything, so its answer is what `apply` would do. Exit status:
                  0  applies cleanly
                  1  conflicts (the tensors hold other bytes: another patch on top, or a damaged file)
                  2  already applied
                  3  wrong base (the patch is for another model: format, architecture, tensors, types, shapes)
                Unreadable inputs exit with 64 and an error message.

                  wilke verify model.gguf edit.wpatch
                """)

        @Argument(help: "Checkpoint: .gguf, .safetensors, or a Hugging Face directory.")
        var model: String

        @Argument(help: "Patch.")
        var patch: String

        @Flag(name: .long, help: "Print JSON.")
        var json = false

        func run() throws {
            let p: Patch, v: PatchVerification
            do {
                p = try readPatch(patch)
                let ckpt = try naming(model) { try Checkpoint.open(model) }
                v = try naming(model) { try CheckpointPatching.verify(p, against: ckpt) }
            } catch {
                // Distinct from the four answers above, so a script never mistakes a bad input for one.
                printErr("Error: " + DisplayText.escaped("\(error)", limit: 600))
                throw ExitCode(64)
            }
            if json {
                var problem: [String: Any] = [:]
                if let reason = v.problem { problem["problem"] = reason }
                try printJSON(problem.merging(["patch": p.id, "state": v.state.rawValue, "recorded": v.recorded,
                               "tensors": v.tensors.map { t -> [String: Any] in
                                   var d: [String: Any] = ["name": t.name, "state": t.state.rawValue, "expected_sha256": t.expectedSHA256]
                                   if let f = t.foundSHA256 { d["found_sha256"] = f }
                                   if let r = t.reason { d["reason"] = r }
                                   return d
                               }]) { $1 })
            } else {
                print("patch \(short(p.id)) \(v.state.rawValue)" + (v.recorded ? " (recorded in the checkpoint's log)" : ""))
                if let reason = v.problem { print("  " + DisplayText.escaped(reason)) }
                for t in v.tensors {
                    print("  " + DisplayText.escaped("\(t.name): \(t.state.rawValue)" + (t.reason.map { " — \($0)" } ?? "")))
                }
            }
            switch v.state {
            case .clean: return
            case .conflict: throw ExitCode(1)
            case .applied: throw ExitCode(2)
            case .wrongBase: throw ExitCode(3)
            }
        }
    }
}
