import Foundation
import Testing
@testable import WilKE

/// The GPT-2-style fixture: a byte-level BPE trained by `tokenizers`, loaded from its tokenizer.json.
@Suite("Tokenizer byte-level BPE (tokenizer.json fixture)")
struct TokenizerBPETests {
    static func load() throws -> BPETokenizer {
        try BPETokenizer(tokenizerJSON: TokenizerFixtures.data("gpt2_fixture.json"))
    }

    @Test("ids equal the tokenizers library's on every corpus case")
    func idsMatch() throws {
        let tok = try Self.load()
        let ref = try TokenizerFixtures.reference("gpt2_fixture_ids.json")
        let wrong = TokenizerFixtures.compareIDs(tok, ref, label: "gpt2 fixture")
        #expect(wrong == 0)
        #expect(tok.vocabularySize == ref.vocab_size)
    }

    @Test("decode matches HF and inverts encode")
    func roundTrip() throws {
        let tok = try Self.load()
        for c in try TokenizerFixtures.reference("gpt2_fixture_ids.json").cases {
            #expect(tok.decode(c.ids) == c.decoded)
            #expect(tok.decode(tok.encode(c.text, addSpecial: false)) == c.text)
        }
    }

    @Test("special tokens are matched whole, only when spelled exactly")
    func specialTokens() throws {
        let tok = try Self.load()
        let start = tok.encode("<|im_start|>", addSpecial: false)
        #expect(start.count == 1)
        #expect(tok.piece(start[0]) == "<|im_start|>")
        let ids = tok.encode("a<|im_end|>b<|endoftext|>", addSpecial: false)
        #expect(ids.contains(start[0] + 1))  // <|im_end|> follows <|im_start|> in the fixture
        #expect(tok.decode(ids) == "a<|im_end|>b<|endoftext|>")
        #expect(tok.encode("<|im_start", addSpecial: false).count > 1)
        #expect(tok.eosID == tok.encode("<|endoftext|>", addSpecial: false).first)
        #expect(!tok.addsBOS)
    }

    @Test("empty text gives no ids and decodes from nothing")
    func empty() throws {
        let tok = try Self.load()
        #expect(tok.encode("", addSpecial: false) == [])
        #expect(tok.encode("", addSpecial: true) == [])
        #expect(tok.decode([]) == "")
        #expect(tok.piece(-1) == "" && tok.piece(1_000_000) == "")
    }

    @Test("malformed tokenizer.json is rejected with a named error")
    func malformed() {
        #expect(throws: WilKEError.malformedTokenizerJSON("not a JSON object")) {
            try BPETokenizer(tokenizerJSON: Data("[1,2]".utf8))
        }
        let unigram = #"{"model": {"type": "Unigram", "vocab": []}}"#
        #expect(throws: WilKEError.unsupportedTokenizer("model type `Unigram`")) {
            try BPETokenizer(tokenizerJSON: Data(unigram.utf8))
        }
        let badMerge = #"{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": ["a b"]}, "pre_tokenizer": {"type": "ByteLevel"}}"#
        #expect(throws: WilKEError.invalidMerge("a b")) { try BPETokenizer(tokenizerJSON: Data(badMerge.utf8)) }
    }

    /// Regression of the `tokenizer` fuzz target's crash (2026-12-07): an id near Int.max sized the id
    /// table before the gap check, and the allocation of ~10^19 entries trapped. The fuzzer's input (a
    /// mutated fixture) and a two-token minimal case are now the gap error.
    @Test func aHugeIdIsAGapNotAnAllocation() throws {
        let crash = try TokenizerFixtures.data("fuzz-huge-id.json")
        #expect(throws: WilKEError.malformedTokenizerJSON("the ids have gaps")) { try BPETokenizer(tokenizerJSON: crash) }
        let huge = #"{"model": {"type": "BPE", "vocab": {"a": 0, "b": 9000000000000000000}, "merges": []}, "pre_tokenizer": {"type": "ByteLevel"}}"#
        #expect(throws: WilKEError.malformedTokenizerJSON("the ids have gaps")) { try BPETokenizer(tokenizerJSON: Data(huge.utf8)) }
    }
}

@Suite("Tokenizer tokenizer.json pre-tokenizer selection")
struct TokenizerJSONPreTokenizerTests {
    /// The fixture's tokenizer.json with its pre_tokenizer replaced by `pre`.
    static func load(pre: Any) throws -> BPETokenizer {
        var root = try JSONSerialization.jsonObject(with: TokenizerFixtures.data("gpt2_fixture.json")) as! [String: Any]
        root["pre_tokenizer"] = pre
        return try BPETokenizer(tokenizerJSON: JSONSerialization.data(withJSONObject: root))
    }

    static func byteLevel(regex: Bool) -> [String: Any] {
        ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": regex]
    }

    @Test("SmolLM2's Digits + ByteLevel and the Llama-3 / Qwen2 Split sequences are recognised")
    func selection() throws {
        #expect(try Self.load(pre: Self.byteLevel(regex: true)).preTokenizer == .gpt2)
        let digits: [String: Any] = ["type": "Sequence", "pretokenizers": [
            ["type": "Digits", "individual_digits": true], Self.byteLevel(regex: true)]]
        #expect(try Self.load(pre: digits).preTokenizer == .digitsThenGPT2)
        for (pattern, expected) in [(BPETokenizer.llama3Pattern, PreTokenizer.llama3), (BPETokenizer.qwen2Pattern, .qwen2)] {
            let split: [String: Any] = ["type": "Sequence", "pretokenizers": [
                ["type": "Split", "pattern": ["Regex": pattern], "behavior": "Isolated", "invert": false],
                Self.byteLevel(regex: false)]]
            #expect(try Self.load(pre: split).preTokenizer == expected)
        }
        #expect(throws: WilKEError.unsupportedTokenizer("pre-tokenizer `Whitespace`")) {
            try Self.load(pre: ["type": "Whitespace"])
        }
    }
}

@Suite("Tokenizer merge loop")
struct TokenizerMergeTests {
    @Test("the heap path for long words merges exactly as the scan path")
    func heapEqualsScan() throws {
        let tok = try TokenizerBPETests.load()
        let words = ["supercalifragilisticexpialidocious", String(repeating: "the ", count: 40),
                     String(repeating: "a", count: 301), "Hello, world! 12345", String(repeating: "ab€", count: 77)]
        for w in words {
            let start = Array(w.utf8).map { tok.byteIDs[Int($0)] }
            var scan = start, heap = start
            tok.merges.apply(&scan, longWord: .max)
            tok.merges.apply(&heap, longWord: 0)
            #expect(scan == heap, "\(w.prefix(20))")
            #expect(scan.count < start.count)
        }
    }
}
