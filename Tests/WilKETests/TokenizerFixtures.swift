import Foundation
import Testing
import TestSupport
@testable import WilKE

/// One corpus case with the ids Hugging Face produced (see samples/reference/make_tokenizer_fixtures.py).
struct TokenizerCase: Decodable {
    let text: String
    let ids: [Int]
    let ids_special: [Int]
    let decoded: String
}

struct TokenizerReference: Decodable {
    let cases: [TokenizerCase]
    let bos_id: Int?
    let add_bos_token: Bool?
    let vocab_size: Int?
}

enum TokenizerFixtures {
    /// Encodes every case of `ref` with and without special tokens against the reference ids, records
    /// each mismatch as an issue (labelled), runs `extra` on each case with the ids we produced, and
    /// returns the number of mismatched cases.
    static func compareIDs(_ tok: any Tokenizer, _ ref: TokenizerReference, label: String,
                           extra: (TokenizerCase, [Int]) -> Void = { _, _ in }) -> Int {
        var wrong = 0
        for c in ref.cases {
            let got = tok.encode(c.text, addSpecial: false)
            if got != c.ids {
                wrong += 1
                let at = firstDifference(got, c.ids) ?? 0
                Issue.record("\(label) \(c.text.prefix(60).debugDescription): first difference at \(at): got \(got.dropFirst(at).prefix(6)), want \(c.ids.dropFirst(at).prefix(6))")
            }
            #expect(tok.encode(c.text, addSpecial: true) == c.ids_special)
            extra(c, got)
        }
        print("\(label): \(ref.cases.count) cases, \(wrong) mismatched")
        return wrong
    }

    static func data(_ name: String) throws -> Data {
        try Data(contentsOf: URL(fileURLWithPath: TestPaths.fixture("WilKETests", "tokenizer/\(name)")))
    }

    static func reference(_ name: String) throws -> TokenizerReference {
        try JSONDecoder().decode(TokenizerReference.self, from: data(name))
    }

    /// Index of the first difference of two id lists, for a readable failure.
    static func firstDifference(_ a: [Int], _ b: [Int]) -> Int? {
        for i in 0..<max(a.count, b.count) where i >= a.count || i >= b.count || a[i] != b[i] { return i }
        return nil
    }
}
