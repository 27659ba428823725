import Foundation
import Testing
import TestSupport
import Formats
@testable import Tool

/// `PrettyJSON` replaces JSONSerialization in `inspect --json`; its text must be what JSONSerialization
/// ([.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]) writes for the same value, byte for byte.
@Suite struct PrettyJSONTests {
    /// The same value as a Foundation object (what the old `inspect --json` built).
    static func foundation(_ v: PrettyJSON) -> Any {
        switch v {
        case let .string(s): return s
        case let .int(i): return i
        case let .double(d): return d
        case let .bool(b): return b
        case .null: return NSNull()
        case let .array(items): return items.map(foundation)
        case let .object(fields): return Dictionary(fields.map { ($0.key, foundation($0.value)) }, uniquingKeysWith: { a, _ in a })
        }
    }

    static func reference(_ v: PrettyJSON) throws -> String {
        let data = try JSONSerialization.data(withJSONObject: foundation(v), options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self)
    }

    @Test func matchesJSONSerializationOnEdgeCases() throws {
        let keys = ["a_b", "a.b", "A", "b", "a10", "a2", "_x", "a-b", "Ab", "aB", "a", "blk.10.x", "blk.9.x", "blk.09.y",
                    "llama.rope.freq_base", "llama.rope.dimension_count", "tokenizer.ggml.token_type", "tokenizer.ggml.tokens",
                    "general.base_model.0.name", "general.base_model.count", "x y", "x~", "x$", "x#", "dFF", "dModel", "Z", "z1"]  // ASCII only: Foundation orders other keys by locale
        let value = PrettyJSON.object([
            ("empty array", .array([])), ("empty object", .object([])),
            ("nested", .object([("x", .array([])), ("y", .object([])), ("z", .array([.array([]), .object([])]))])),
            ("doubles", .array([100000.0, 0.1, 1e16, 1e-7, -0.0, 123456789012.5, Double(Float(0.1)), 1e21, 3.0e15, 2.5,
                                Double(Float(1e-5)), 1e300, -2.75].map { .double($0) })),
            ("ints", .array([Int.max, Int.min, 0, -1, 49152].map { .int($0) })),
            ("strings", .array(["a\"b\\c/d\n\r\t\u{08}\u{0C}\u{01}\u{1F}\u{7F}é\u{2028}😀", "", "{% if x %}\n"].map { .string($0) })),
            ("bools", .array([.bool(true), .bool(false), .null])),
            ("keys", .object(keys.enumerated().map { ($0.element, .int($0.offset)) })),
        ])
        let ours = value.rendered()
        let ref = try Self.reference(value)
        #expect(ours == ref)
        if ours != ref {
            for (a, b) in zip(ours.split(separator: "\n", omittingEmptySubsequences: false), ref.split(separator: "\n", omittingEmptySubsequences: false)) where a != b {
                print("ours: \(a)\nref:  \(b)")
            }
        }
    }

    /// Seeded random GGUF-style keys (lowercase words, dots, underscores, digit runs): the same order as
    /// JSONSerialization's sort.
    @Test func keyOrderMatchesFoundationOnRandomKeys() throws {
        var rng = SplitMix64(seed: 11)
        let parts = ["blk", "attn", "q", "k", "ffn_down", "weight", "bias", "a", "b", "llama", "rope", "token", "tokens"]
        var keys = Set<String>()
        while keys.count < 300 {
            var k = ""
            for i in 0..<Int.random(in: 1...4, using: &rng) {
                if i > 0 { k += [".", "_", "-", ""][Int.random(in: 0..<4, using: &rng)] }
                k += Bool.random(using: &rng) ? parts.randomElement(using: &rng)! : String(Int.random(in: 0...120, using: &rng))
            }
            keys.insert(k)
        }
        let value = PrettyJSON.object(keys.map { ($0, .int(1)) })
        #expect(value.rendered() == (try Self.reference(value)))
    }

    /// The hyper-parameter object of `inspect --json` is what `ModelConfig`'s Codable conformance
    /// encodes (config.json's keys), with the same values.
    @Test func hyperparametersMatchTheirCodableEncoding() throws {
        func hp(_ arch: String, _ extra: [String: GGUFValue]) throws -> ModelConfig {
            var kv: [String: GGUFValue] = ["general.architecture": .text(arch), "\(arch).block_count": .uint32(30),
                                           "\(arch).embedding_length": .uint32(576), "\(arch).attention.head_count": .uint32(9),
                                           "\(arch).context_length": .uint32(8192), "\(arch).vocab_size": .uint32(49152)]
            kv.merge(extra) { $1 }
            return try ModelConfig(gguf: { kv[$0] }, hasOutputTensor: arch == "gpt2")
        }
        for hp in [
            try hp("llama", ["llama.attention.layer_norm_rms_epsilon": .float32(1e-5), "llama.rope.freq_base": .float32(100000),
                             "llama.attention.head_count_kv": .uint32(3)]),
            try hp("gpt2", ["gpt2.attention.layer_norm_epsilon": .float32(1e-5), "gpt2.feed_forward_length": .uint32(2304)]),
            try hp("qwen2", ["qwen2.rope.freq_base": .float32(1e6), "qwen2.rope.dimension_count": .uint32(32)]),
        ] {
            let viaCodable = try JSONSerialization.jsonObject(with: JSONEncoder().encode(hp))
            let data = try JSONSerialization.data(withJSONObject: viaCodable, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])
            #expect(InspectReport.jsonValue(hp).rendered() == String(decoding: data, as: UTF8.self))
        }
    }
}
