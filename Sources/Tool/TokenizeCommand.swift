import ArgumentParser
import Foundation
import WilKE

extension RootCommand {
    struct Tokenize: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show the token ids and pieces of a text.",
            discussion: """
                  wilke tokenize SmolLM2-135M-Instruct.Q4_1.gguf "The Eiffel Tower"
                  echo "The Eiffel Tower" | wilke tokenize SmolLM2-135M-Instruct.Q4_1.gguf -
                """)

        @Argument(help: "Checkpoint (.gguf, or a Hugging Face directory with tokenizer.json).")
        var model: String

        @Argument(help: "The text to tokenize (- or nothing: standard input, without its final newline).")
        var text: String = "-"

        @Flag(name: .long, help: "Do not add the model's BOS token.")
        var noSpecial = false

        @Flag(name: .long, help: "Print JSON.")
        var json = false

        func run() throws {
            let tok = try naming(model) { try LoadedModel.tokenizerOnly(path: model) }
            var input = text
            if text == "-" {
                input = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
                if input.hasSuffix("\n") { input.removeLast() }  // echo's newline is not part of the text ("\r\n" is one Character)
            }
            let ids = tok.encode(input, addSpecial: !noSpecial)
            if json {
                let out: [String: Any] = ["ids": ids, "pieces": ids.map { tok.piece($0) }, "decoded": ids.map { tok.decode([$0]) }]
                print(String(decoding: try JSONSerialization.data(withJSONObject: out, options: [.sortedKeys]), as: UTF8.self))
                return
            }
            print("\(ids.count) tokens")
            for id in ids { print(String(format: "%8d  ", id) + tok.decode([id]).debugDescription + "  " + tok.piece(id).debugDescription) }
        }
    }
}
