import ArgumentParser
import Formats
import Patch

extension RootCommand {
    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check whether a patch applies cleanly to a checkpoint, is already applied, or conflicts.",
            discussion: """
                Reads only the tensors the patch touches and compares their SHA-256 with what the patch reads
                and writes. Exit status: 0 applies cleanly or already applied, 1 conflicts.

                  wilke verify model.gguf edit.wpatch
                """)

        @Argument(help: "Checkpoint: .gguf, .safetensors, or a Hugging Face directory.")
        var model: String

        @Argument(help: "Patch.")
        var patch: String

        @Flag(name: .long, help: "Print JSON.")
        var json = false

        func run() throws {
            let p = try readPatch(patch)
            let ckpt = try naming(model) { try Checkpoint.open(model) }
            let v = try naming(model) { try CheckpointPatching.verify(p, against: ckpt) }
            if json {
                try printJSON(["patch": p.id, "state": v.state.rawValue, "recorded": v.recorded,
                               "tensors": v.tensors.map { t -> [String: Any] in
                                   var d: [String: Any] = ["name": t.name, "state": t.state.rawValue, "expected_sha256": t.expectedSHA256]
                                   if let f = t.foundSHA256 { d["found_sha256"] = f }
                                   if let r = t.reason { d["reason"] = r }
                                   return d
                               }])
            } else {
                print("patch \(short(p.id)) \(v.state.rawValue)" + (v.recorded ? " (recorded in the checkpoint's log)" : ""))
                for t in v.tensors { print("  \(t.name): \(t.state.rawValue)" + (t.reason.map { " — \($0)" } ?? "")) }
            }
            if v.state == .conflict { throw ExitCode(1) }
        }
    }
}
