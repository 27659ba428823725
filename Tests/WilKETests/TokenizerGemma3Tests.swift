import Formats
import Foundation
import Testing
import TestSupport
@testable import WilKE

/// Gemma 3's real SentencePiece vocabulary (262,144 pieces with scores, byte fallback, add_bos), read
/// from the GGUF, against transformers' tokenizer built from the same file (gemma3_ids.json).
@Suite("Tokenizer Gemma 3 (real GGUF)")
struct TokenizerGemma3Tests {
    @Test("ids equal transformers' on the whole corpus, BOS added", .enabled(if: Gemma3Model.available))
    func corpus() throws {
        let tok = try BPETokenizer(gguf: GGUFFile(path: Gemma3Model.path))
        let ref = try TokenizerFixtures.reference("gemma3_ids.json")
        #expect(tok.vocabularySize == 262_144)
        #expect(tok.addsBOS == (ref.add_bos_token ?? false))
        #expect(tok.bosID == ref.bos_id)
        let wrong = TokenizerFixtures.compareIDs(tok, ref, label: "gemma3") { c, _ in
            #expect(tok.decode(c.ids) == c.decoded)
        }
        #expect(wrong == 0)
    }
}

/// Gemma's vocabulary rules on tiny synthetic vocabularies (no model file needed).
@Suite("Tokenizer Gemma-style SentencePiece rules")
struct TokenizerGemmaRulesTests {
    static func gemma(_ tokens: [String], types: [Int32]? = nil) throws -> BPETokenizer {
        try BPETokenizer(ggufTokens: tokens, merges: [], tokenTypes: types, scores: tokens.map { _ in 0 }, model: "llama",
                         pre: nil, bosID: nil, eosID: nil, padID: nil, addBOS: false, architecture: "gemma3")
    }

    @Test("canonically equivalent pieces keep their own ids; a duplicated piece keeps its last id")
    func equivalentAndDuplicatePieces() throws {
        // "é" precomposed (3) and decomposed (4) are equal Swift Strings but different pieces.
        let tok = try Self.gemma(["<unk>", "e", "\u{301}", "\u{E9}", "e\u{301}", "x", "x"])
        #expect(tok.encode("\u{E9}", addSpecial: false) == [3])
        #expect(tok.encode("e\u{301}", addSpecial: false) == [4])
        #expect(tok.encode("x", addSpecial: false) == [6])
        #expect(tok.decode([4, 3]) == "e\u{301}\u{E9}")
    }

    @Test("no dummy prefix; space runs stored as spaces merge as ▁ runs and decode back, leading space kept")
    func spaceRuns() throws {
        let tok = try Self.gemma(["<unk>", "\u{2581}", "  ", "a", "   "], types: [3, 1, 4, 1, 4])
        #expect(tok.encode("a", addSpecial: false) == [3])
        #expect(tok.encode("a  a", addSpecial: false) == [3, 2, 3])
        #expect(tok.encode("   a", addSpecial: false) == [4, 3])
        #expect(tok.encode(" a", addSpecial: false) == [1, 3])
        #expect(tok.decode([1, 3]) == " a")
        #expect(tok.decode([3, 4, 3]) == "a   a")
        #expect(tok.piece(2) == "  ")
    }
}
