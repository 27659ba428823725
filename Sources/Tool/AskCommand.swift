import ArgumentParser
import Foundation
import Formats
import WilKE

extension RootCommand {
    struct Ask: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Complete a prompt and show the most likely next tokens.",
            discussion: """
                  wilke ask SmolLM2-135M-Instruct.Q4_1.gguf "The capital of France is"
                  wilke ask model.gguf "The Eiffel Tower is located in the city of" -n 5 --top 10 --json
                  wilke ask model.gguf "LeBron James plays the sport of" --patch edit.wpatch
                """)

        @Argument(help: "Checkpoint: .gguf, .safetensors (with config.json and tokenizer.json beside it), or a Hugging Face directory.")
        var model: String

        @Argument(help: "The prompt text.")
        var prompt: String

        @Option(name: .short, help: "Number of tokens to generate.")
        var n = 20

        @Option(name: .long, help: "How many next-token candidates to list.")
        var top = 5

        @Option(name: .long, help: "Sample from the K most likely tokens instead of greedy decoding (0 = greedy).")
        var sampleTopK = 0

        @Option(name: .long, help: "Random seed for sampling.")
        var seed: UInt64 = 0

        @Option(name: .long, help: "Apply this patch in memory before answering (repeatable; the file is not changed).")
        var patch: [String] = []

        @Flag(name: .long, help: "Print JSON.")
        var json = false

        func validate() throws {
            guard n >= 0 else { throw ValidationError("-n must be 0 or more") }
            guard top >= 0 else { throw ValidationError("--top must be 0 or more") }
            guard sampleTopK >= 0 else { throw ValidationError("--sample-top-k must be 0 or more") }
        }

        func run() throws {
            guard !prompt.isEmpty else { throw CLIError("the prompt is empty: give the text to complete") }
            let patches = try patch.map(readPatch)
            let loaded = try naming(model) { try LoadedModel(checkpoint: try Checkpoint.open(model), patches: patches) }
            let ids = try loaded.encodePrompt(prompt, reserve: n)
            // A long prompt is one forward pass that can take a while on one core: say what is going on.
            if ids.count >= 256, isatty(STDERR_FILENO) == 1 { printErr("reading a prompt of \(ids.count) tokens…") }
            let candidates = try loaded.nextTokens(after: ids, top: top)
            let sampling: Sampling = sampleTopK > 0 ? .topK(sampleTopK) : .greedy
            let generated = n > 0 ? try loaded.complete(ids, maxNewTokens: n, sampling: sampling, seed: seed) : []
            let completion = loaded.tokenizer.decode(generated)
            if json {
                let out: [String: Any] = [
                    "prompt": prompt, "prompt_ids": ids, "completion": completion, "completion_ids": generated,
                    "next_tokens": candidates.map { ["id": $0.id, "piece": $0.piece, "logit": Double($0.logit), "probability": $0.probability] },
                ]
                print(String(decoding: try JSONSerialization.data(withJSONObject: out, options: [.sortedKeys, .prettyPrinted]), as: UTF8.self))
                return
            }
            // The completion is model output decoded from the checkpoint's vocabulary: untrusted bytes.
            print(DisplayText.escaped(prompt + completion, limit: nil, keepNewlines: true))
            if !candidates.isEmpty {
                print("\nnext token after the prompt:")
                print("  rank  id      probability  logit     piece")
                for (i, c) in candidates.enumerated() {
                    print(String(format: "  %4d  %-6d  %11.4f  %8.3f  ", i + 1, c.id, c.probability, c.logit) + c.piece.debugDescription)
                }
            }
        }
    }
}
