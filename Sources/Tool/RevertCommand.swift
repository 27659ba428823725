import ArgumentParser
import Formats
import Patch

extension RootCommand {
    struct Revert: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Undo patches on an edited checkpoint, byte for byte.",
            discussion: """
                PATCHES are the patches as they were applied (in that order); they are undone last first. Each
                tensor is checked against the patch's result hash before and its base hash after, and the ids
                are removed from the checkpoint's record, so reverting everything gives back the original file.

                  wilke revert edited.gguf edit.wpatch -o original.gguf
                  wilke revert edited.gguf a.wpatch b.wpatch --in-place
                """)

        @Argument(help: "Edited checkpoint: .gguf, .safetensors, or a Hugging Face directory.")
        var model: String

        @Argument(help: "Patches in the order they were applied.")
        var patches: [String]

        @Option(name: .shortAndLong, help: "Output checkpoint.")
        var output: String?

        @Flag(name: .long, help: "Rewrite the input itself (atomically, file by file).")
        var inPlace = false

        @Flag(name: .long, help: "Revert despite hash mismatches or a missing record; replace an existing output.")
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
            let bar = ProgressBar("revert")
            let report = try naming(model) {
                try CheckpointPatching.revert(ps, from: ckpt, output: out, options: PatchingOptions(force: force, overwrite: force),
                                              progress: bar.update)
            }
            try printPatchingReport(report, verb: "reverted", patches: ps, output: out ?? model, json: json)
        }
    }
}
