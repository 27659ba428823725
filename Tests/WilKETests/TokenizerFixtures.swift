import Foundation
import TestSupport

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
