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
                  wilke apply model.gguf edit.wpatch -o edited-f16.gguf --promote f16   # also writes edited-f16.gguf.wpatch

                --promote f16 | bf16 writes the quantized tensors the patches edit as that type instead: the
                patches (stacked) are re-made for it, as `wilke rebase --promote` does, and that patch is what the
                output records and what reverts it byte-exactly; it is written beside the output as OUT.wpatch.
                """)

        @OptionGroup var args: PatchingArguments

        @Option(name: .long, help: "Type of edited quantized tensors: f32, f16 or bf16 (writes the re-made patch to OUT.wpatch).")
        var promote: FloatDType?

        func run() throws {
            guard let promote else {
                try args.run("apply") { ps, ckpt, out, opts, progress in try CheckpointPatching.apply(ps, to: ckpt, output: out, options: opts, progress: progress) }
                return
            }
            try args.run("apply") { ps, ckpt, out, opts, progress in
                guard let out else { throw CLIError("--promote changes tensor types, which cannot be written in place (use -o)") }
                let stacked = ps.count == 1 ? ps[0] : try PatchStack.stack(ps)
                let promoted = try PatchRebase.rebase(stacked, from: ckpt, onto: ckpt, promoteTo: promote.dtype).patch
                let report = try CheckpointPatching.apply([promoted], to: ckpt, output: out, options: opts, progress: progress)
                try writePatch(promoted, to: out + ".wpatch", overwrite: opts.overwrite)
                printErr("recorded as patch \(short(promoted.id)) (\(promote.rawValue) promotion), written to \(out).wpatch: revert with it")
                return report
            }
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
