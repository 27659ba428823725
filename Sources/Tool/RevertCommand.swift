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

        @OptionGroup var args: PatchingArguments

        func run() throws {
            try args.run("revert") { ps, ckpt, out, opts, progress in try CheckpointPatching.revert(ps, from: ckpt, output: out, options: opts, progress: progress) }
        }
    }
}
