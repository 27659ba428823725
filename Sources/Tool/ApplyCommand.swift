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

        @OptionGroup var args: PatchingArguments

        func run() throws {
            try args.run("apply") { ps, ckpt, out, opts, progress in try CheckpointPatching.apply(ps, to: ckpt, output: out, options: opts, progress: progress) }
        }
    }
}

func printPatchingReport(_ r: PatchingReport, verb: String, patches: [Patch], output: String, json: Bool) throws {
    if json {
        try printJSON(["output": output, verb: patches.map(\.id), "tensors": r.tensors, "type_changes": r.typeChanges,
                       "record": r.record.map { ["id": $0.id, "summary": $0.summary] }])
        return
    }
    for p in patches { say("\(verb) \(short(p.id))  \(p.summary)") }
    say("\(r.tensors.count) tensor\(r.tensors.count == 1 ? "" : "s") rewritten" +
          (r.typeChanges.isEmpty ? "" : " (\(r.typeChanges.count) changed type)") + ", wrote \(output)")
}
