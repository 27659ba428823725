import ArgumentParser
import Formats
import Patch

extension RootCommand {
    struct Apply: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Apply patches to a checkpoint, writing a new checkpoint (or in place).",
            discussion: """
                Checks every touched tensor's SHA-256 against the patch before writing anything, copies the
                untouched bytes (copy_file_range), verifies each result hash, and renames the output into place
                only when it is complete. The patch ids are recorded in the output's metadata (GGUF key
                wilke.patches, safetensors __metadata__, or wilke-patches.json in a sharded directory).
                Quantized tensors become the float type the patch was built with, so --in-place is refused when
                a tensor changes type.

                  wilke apply model.gguf edit.wpatch -o edited.gguf
                  wilke apply smollm2-hf a.wpatch b.wpatch --in-place
                """)

        @Argument(help: "Checkpoint: .gguf, .safetensors, or a Hugging Face directory.")
        var model: String

        @Argument(help: "Patches, applied in this order.")
        var patches: [String]

        @Option(name: .shortAndLong, help: "Output checkpoint (same kind as the input).")
        var output: String?

        @Flag(name: .long, help: "Rewrite the input itself (atomically, file by file).")
        var inPlace = false

        @Flag(name: .long, help: "Apply despite hash or model mismatches and an existing record; replace an existing output.")
        var force = false

        @Flag(name: .long, help: "Print JSON.")
        var json = false

        func validate() throws {
            guard !patches.isEmpty else { throw ValidationError("give at least one patch") }
        }

        func run() throws {
            ignoreFileSizeSignal()
            let out = try outputChoice(output: output, inPlace: inPlace)
            let ps = try patches.map(readPatch)
            let ckpt = try naming(model) { try Checkpoint.open(model) }
            let bar = ProgressBar("apply")
            let report = try naming(model) {
                try CheckpointPatching.apply(ps, to: ckpt, output: out, options: PatchingOptions(force: force, overwrite: force),
                                             progress: bar.update)
            }
            try printPatchingReport(report, verb: "applied", patches: ps, output: out ?? model, json: json)
        }
    }
}

func printPatchingReport(_ r: PatchingReport, verb: String, patches: [Patch], output: String, json: Bool) throws {
    if json {
        try printJSON(["output": output, verb: patches.map(\.id), "tensors": r.tensors, "type_changes": r.typeChanges,
                       "record": r.record.map { ["id": $0.id, "summary": $0.summary] }])
        return
    }
    for p in patches { print("\(verb) \(short(p.id))  \(p.summary)") }
    print("\(r.tensors.count) tensor\(r.tensors.count == 1 ? "" : "s") rewritten" +
          (r.typeChanges.isEmpty ? "" : " (\(r.typeChanges.count) changed type)") + ", wrote \(output)")
}
