import Foundation
import Testing
@testable import WilKE

@Suite("Tokenizer pre-tokenizers")
struct TokenizerPreTokenizerTests {
    struct Splits: Decodable {
        let texts: [String]
        let gpt2: [[String]]
        let smollm: [[String]]
        let llama3: [[String]]
        let qwen2: [[String]]
        enum CodingKeys: String, CodingKey { case texts, gpt2, smollm, llama3 = "llama-bpe", qwen2 }
    }

    static func pieces(_ pre: PreTokenizer, _ text: String) -> [String] {
        let t = ScalarText(text.unicodeScalars)
        var ranges: [Range<Int>] = []
        pre.split(t, 0, t.scalars.count, into: &ranges)
        return ranges.map { String(String.UnicodeScalarView(t.scalars[$0])) }
    }

    @Test("each scanner cuts every corpus line exactly as oniguruma does", arguments: [
        PreTokenizer.gpt2, .digitsThenGPT2, .llama3, .qwen2,
    ])
    func matchesOniguruma(_ pre: PreTokenizer) throws {
        let s = try JSONDecoder().decode(Splits.self, from: TokenizerFixtures.data("pretokenizer_splits.json"))
        let expected = switch pre {
        case .gpt2: s.gpt2
        case .digitsThenGPT2: s.smollm
        case .llama3: s.llama3
        case .qwen2: s.qwen2
        }
        var mismatches = 0
        for (text, want) in zip(s.texts, expected) {
            let got = Self.pieces(pre, text)
            if got != want {
                mismatches += 1
                Issue.record("\(pre) on \(text.debugDescription): got \(got.map(\.debugDescription)), want \(want.map(\.debugDescription))")
            }
        }
        #expect(mismatches == 0)
        #expect(s.texts.count > 100)
    }

    @Test("GGUF pre names select the right split")
    func ggufNames() {
        #expect(PreTokenizer(ggufPre: "smollm") == .digitsThenGPT2)
        #expect(PreTokenizer(ggufPre: "gpt2") == .gpt2)
        #expect(PreTokenizer(ggufPre: nil) == .gpt2)
        #expect(PreTokenizer(ggufPre: "llama-bpe") == .llama3)
        #expect(PreTokenizer(ggufPre: "qwen2") == .qwen2)
        #expect(PreTokenizer(ggufPre: "no-such-split") == nil)
    }
}
