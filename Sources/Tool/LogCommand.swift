import ArgumentParser
import Formats
import Patch

extension RootCommand {
    struct Log: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the patches recorded as applied to a checkpoint, oldest first.",
            discussion: """
                  wilke log edited.gguf
                  wilke log smollm2-hf --json

                The edits recorded here can also ship as LoRA adapters of the unedited base: `wilke export`.
                """)

        @Argument(help: "Checkpoint: .gguf, .safetensors, or a Hugging Face directory.")
        var model: String

        @Flag(name: .long, help: "Print JSON.")
        var json = false

        func run() throws {
            let ckpt = try naming(model) { try Checkpoint.open(model) }
            let record = try naming(model) { try Provenance.read(ckpt) }
            // After the list: the edits baked in here also ship as LoRA adapters of the unedited base.
            defer {
                if !json, !record.isEmpty {
                    print("to ship these edits without this checkpoint: wilke export PATCH --base ORIGINAL -o edit-lora.gguf (llama.cpp, Ollama) or -o edit-peft (PEFT)")
                }
            }
            if json {
                try printJSON(["checkpoint": model, "patches": record.map { ["id": $0.id, "summary": $0.summary] }])
                return
            }
            if record.isEmpty { print("no patches applied"); return }
            for (i, p) in record.enumerated() { say("\(i + 1). \(p.id)  \(p.summary)") }
        }
    }
}
