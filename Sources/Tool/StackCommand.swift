import ArgumentParser
import Formats
import Patch

extension RootCommand {
    struct Stack: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Combine patches into one patch equal to applying them in order.",
            discussion: """
                Checks that the patches share a model and that each step reads what the previous one on its
                tensor wrote. --squash merges the steps on each tensor into one step of summed rank; it needs
                the base model (--base) to compute the merged step's revert data.

                  wilke stack a.wpatch b.wpatch -o ab.wpatch
                  wilke stack a.wpatch b.wpatch --squash --base model.gguf -o ab.wpatch
                  wilke stack a.wpatch b.wpatch -o - | wilke show -
                """)

        @Argument(help: "Patches, in application order.")
        var patches: [String]

        @Option(name: .shortAndLong, help: "Output .wpatch (- for standard output).")
        var output: String

        @Flag(name: .long, help: "Merge consecutive steps on one tensor into one rank-k step.")
        var squash = false

        @Option(name: .long, help: "The model the patches apply to (required by --squash).")
        var base: String?

        @Flag(name: .long, help: "Replace an existing output.")
        var force = false

        @Flag(name: .long, help: "Print JSON.")
        var json = false

        func validate() throws {
            guard !patches.isEmpty else { throw ValidationError("give at least one patch") }
            if squash, base == nil { throw ValidationError("--squash needs --base MODEL") }
        }

        func run() throws {
            ignoreFileSizeSignal()
            let ps = try patches.map(readPatch)
            var stacked = try PatchStack.stack(ps)
            if squash, let base {
                let ckpt = try naming(base) { try Checkpoint.open(base) }
                var bases: [String: TensorBytes] = [:]
                var counts: [String: Int] = [:]
                for s in stacked.steps { counts[s.tensor, default: 0] += 1 }
                for (name, n) in counts where n > 1 {
                    guard let t = ckpt.tensor(name) else { throw CLIError("\(base): the model has no tensor \(name)") }
                    bases[name] = ckpt.tensorBytes(t)
                }
                stacked = try naming(base) { try PatchStack.squash(stacked, bases: bases) }
            }
            try writePatch(stacked, to: output, overwrite: force)
            // With -o - the patch itself is stdout; the report moves to stderr.
            let toStderr = output == "-"
            func say(_ line: String) { let safe = DisplayText.escaped(line, limit: 2000); if toStderr { printErr(safe) } else { print(safe) } }
            if json, output == "-" {
                printErr("stacked into \(stacked.id)")
            } else if json {
                try printJSON(["output": output, "id": stacked.id, "inputs": ps.map(\.id), "steps": stacked.steps.count,
                               "tensors": stacked.touchedTensors])
            } else {
                say("stacked \(ps.count) patch\(ps.count == 1 ? "" : "es") into \(short(stacked.id)): \(stacked.steps.count) step\(stacked.steps.count == 1 ? "" : "s") on \(stacked.touchedTensors.count) tensor\(stacked.touchedTensors.count == 1 ? "" : "s"), wrote \(output)")
            }
        }
    }
}
