import Foundation
import Testing
@testable import WilKE

/// A SentencePiece-style (Llama-2 layout) fixture vocabulary given as GGUF arrays, against transformers'
/// LlamaTokenizer built from the same arrays.
@Suite("Tokenizer SentencePiece-style BPE (GGUF llama fixture)")
struct TokenizerSentencePieceTests {
    struct Vocabulary: Decodable {
        let tokens: [String]
        let scores: [Float]
        let token_type: [Int32]
    }

    static func load(addBOS: Bool? = nil) throws -> BPETokenizer {
        let v = try JSONDecoder().decode(Vocabulary.self, from: TokenizerFixtures.data("spm_fixture.json"))
        return try BPETokenizer(ggufTokens: v.tokens, merges: [], tokenTypes: v.token_type, scores: v.scores, model: "llama",
                                pre: nil, bosID: 1, eosID: 2, padID: nil, addBOS: addBOS)
    }

    @Test("ids equal HF on every corpus case, BOS added by default")
    func idsMatch() throws {
        let tok = try Self.load()
        #expect(tok.addsBOS)
        let ref = try TokenizerFixtures.reference("spm_fixture_ids.json")
        let wrong = TokenizerFixtures.compareIDs(tok, ref, label: "spm fixture") { c, _ in
            #expect(tok.decode(c.ids) == c.decoded)
        }
        #expect(wrong == 0)
    }

    @Test("byte fallback covers characters outside the vocabulary and decodes back")
    func byteFallback() throws {
        let tok = try Self.load()
        let ids = tok.encode("中文", addSpecial: false)
        #expect(ids.count == 1 + 6)  // ▁ then six <0xXX>
        #expect(ids.dropFirst().allSatisfy { tok.piece($0).hasPrefix("<0x") })
        #expect(tok.decode(ids) == "中文")
        // A lone continuation byte is not UTF-8: one U+FFFD per byte, as HF's ByteFallback decoder.
        let lone = tok.encode("\u{4E2D}", addSpecial: false).dropFirst()
        #expect(tok.decode(Array(lone.dropFirst())) == "\u{FFFD}\u{FFFD}")
    }

    @Test("decode inverts encode for text without a leading space; control tokens stay whole")
    func roundTrip() throws {
        let tok = try Self.load()
        for c in try TokenizerFixtures.reference("spm_fixture_ids.json").cases where !c.text.hasPrefix(" ") {
            #expect(tok.decode(tok.encode(c.text, addSpecial: false)) == c.text)
        }
        #expect(tok.encode("</s>", addSpecial: false) == [2])
        #expect(tok.encode("", addSpecial: true) == [1])
        #expect(try Self.load(addBOS: false).encode("", addSpecial: true) == [])
    }

    @Test("inconsistent arrays are rejected")
    func rejects() {
        #expect(throws: WilKEError.tokenizerArrayMismatch("2 tokens but 1 scores")) {
            try BPETokenizer(ggufTokens: ["a", "b"], merges: [], tokenTypes: nil, scores: [0], model: "llama",
                             pre: nil, bosID: nil, eosID: nil, padID: nil, addBOS: nil)
        }
        #expect(throws: WilKEError.tokenIDOutOfRange(name: "bos", id: 5, vocabularySize: 2)) {
            try BPETokenizer(ggufTokens: ["a", "b"], merges: [], tokenTypes: nil, scores: [0, 0], model: "llama",
                             pre: nil, bosID: 5, eosID: nil, padID: nil, addBOS: nil)
        }
        #expect(throws: WilKEError.unsupportedTokenizer("tokenizer model `t5`")) {
            try BPETokenizer(ggufTokens: ["a"], merges: [], tokenTypes: nil, scores: nil, model: "t5",
                             pre: nil, bosID: nil, eosID: nil, padID: nil, addBOS: nil)
        }
    }
}
