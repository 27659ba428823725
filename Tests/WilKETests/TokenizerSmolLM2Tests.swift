import Formats
import Foundation
import Testing
import TestSupport
@testable import WilKE

/// SmolLM2's real vocabulary (49152 tokens, 48900 merges), read from the GGUF.
@Suite("Tokenizer SmolLM2 (real GGUF)")
struct TokenizerSmolLM2Tests {
    static func check(_ tok: BPETokenizer, _ reference: String) throws -> Int {
        let ref = try TokenizerFixtures.reference(reference)
        let wrong = TokenizerFixtures.compareIDs(tok, ref, label: reference) { c, got in
            #expect(tok.decode(c.ids) == c.decoded)
            #expect(tok.decode(got) == c.text)
        }
        return wrong
    }

    @Test("ids equal SmolLM2's tokenizer (digits isolated) on the whole corpus", .enabled(if: RealModel.available))
    func smollm() throws {
        let gguf = try GGUFFile(path: RealModel.path)
        let tok = try BPETokenizer(gguf: gguf)
        #expect(tok.preTokenizer == .digitsThenGPT2)
        #expect(tok.vocabularySize == 49152)
        #expect(tok.bosID == 1 && tok.eosID == 2 && tok.padID == 2)
        #expect(!tok.addsBOS)  // tokenizer.ggml.add_bos_token = false, as HF's add_bos_token
        #expect(try Self.check(tok, "smollm2_ids.json") == 0)
        #expect(tok.encode("<|im_start|>user\n", addSpecial: false).first == 1)
        #expect(tok.piece(1) == "<|im_start|>")
    }

    @Test("with the plain GPT-2 split, ids equal transformers' GGUF-built tokenizer", .enabled(if: RealModel.available))
    func transformersGGUF() throws {
        let gguf = try GGUFFile(path: RealModel.path)
        let tok = try BPETokenizer(
            ggufTokens: gguf["tokenizer.ggml.tokens"]!.stringArray!, merges: gguf["tokenizer.ggml.merges"]!.stringArray!,
            tokenTypes: gguf["tokenizer.ggml.token_type"]!.intArray!.map { Int32($0) }, scores: nil, model: "gpt2",
            pre: "gpt2", bosID: 1, eosID: 2, padID: 2, addBOS: false)
        #expect(try Self.check(tok, "smollm2_gguf_ids.json") == 0)
    }

    @Test("a 20-token prompt encodes in microseconds", .enabled(if: RealModel.available))
    func speed() throws {
        let tok = try BPETokenizer(gguf: GGUFFile(path: RealModel.path))
        let prompt = "The Eiffel Tower is located in the city of Paris, which is the capital of France, 1889."
        let ids = tok.encode(prompt, addSpecial: true)
        let rounds = 2000
        let start = DispatchTime.now().uptimeNanoseconds
        var total = 0
        for _ in 0..<rounds { total += tok.encode(prompt, addSpecial: true).count }
        let micros = Double(DispatchTime.now().uptimeNanoseconds - start) / 1000 / Double(rounds)
        print("SmolLM2: \(ids.count) tokens encoded in \(micros) µs (cached words)")
        #expect(total == ids.count * rounds)
        #expect(micros < 1000)  // generous for debug builds; release is ~10 µs
    }
}
