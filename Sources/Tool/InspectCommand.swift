import ArgumentParser
import Foundation
import Formats

extension RootCommand {
    struct Inspect: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Summarize a checkpoint: format, architecture, hyper-parameters, metadata and tensors.",
            discussion: """
                Reads headers only, so it is instant on any size. PATH is a .gguf file, a .safetensors file or a
                Hugging Face model directory (config.json + model.safetensors or shards).

                  wilke inspect model.gguf
                  wilke inspect model.gguf --tensors 'blk.1[0-5].ffn_down*' --json
                """)

        @Argument(help: "Checkpoint: .gguf, .safetensors, or a Hugging Face directory.")
        var path: String

        @Option(name: .long, help: "Only list tensors whose name (stored or canonical) matches this glob.")
        var tensors: String?

        @Flag(name: .long, help: "Print JSON (schema in docs/ARCHITECTURE.md).")
        var json = false

        func run() throws {
            let ckpt = try naming(path) { try Checkpoint.open(path) }
            let report = InspectReport(ckpt, glob: tensors)
            if json {
                print(report.json())
            } else {
                print(report.text())  // every string from the file in it is escaped (DisplayText)
            }
        }
    }
}
