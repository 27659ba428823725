import Foundation
import Testing
@testable import Formats
import TestSupport

/// GGUFFile validates metadata on open by walking it (`skipGGUFValue`) and decodes it on demand. These
/// check that the walk applies exactly the decoder's rules and that the lazy accessors agree with the
/// decoded values.
@Suite struct GGUFLazyMetadataTests {
    /// Walking and decoding the same bytes: both succeed and stop at the same offset, or both throw the
    /// same error. Inputs: every value of the every_type fixture, then seeded random corruptions of it.
    @Test func skipAppliesTheSameChecksAsDecode() throws {
        let f = try GGUFFile(path: TestPaths.fixture("FormatsTests", "gguf/every_type.gguf"))
        let bytes = Array(f.file.bytes)
        var rng = SplitMix64(seed: 7)
        var agreedOK = 0, agreedError = 0
        for e in f.entries {
            for round in 0..<40 {
                var b = Array(bytes[e.range.lowerBound...])
                if round > 0 {  // corrupt a few bytes of this value (or just past it)
                    for _ in 0..<Int.random(in: 1...3, using: &rng) {
                        let i = Int.random(in: 0..<min(b.count, e.range.count + 8), using: &rng)
                        b[i] = [0, 1, 2, 0xFF, 0x40, UInt8.random(in: 0...255, using: &rng)][Int.random(in: 0..<6, using: &rng)]
                    }
                }
                if round % 5 == 4 { b = Array(b.prefix(Int.random(in: 0..<(e.range.count + 1), using: &rng))) }
                try b.withUnsafeBytes { raw in
                    var walk = ByteReader(raw), read = ByteReader(raw)
                    let walked = Result { try walk.skipGGUFValue(e.type, key: e.key) }
                    let decoded = Result { try read.readGGUFValue(e.type, key: e.key) }
                    switch (walked, decoded) {
                    case (.success, .success):
                        #expect(walk.offset == read.offset, "\(e.key) round \(round)")
                        agreedOK += 1
                    case let (.failure(a), .failure(b)):
                        #expect(a as? FormatError == b as? FormatError, "\(e.key) round \(round): \(a) vs \(b)")
                        agreedError += 1
                    default:
                        Issue.record("\(e.key) round \(round): walk \(walked), decode \(decoded)")
                    }
                }
            }
        }
        print("skip vs decode: \(agreedOK) both accepted, \(agreedError) both rejected")
        #expect(agreedOK > 0 && agreedError > 0)
    }

    /// Each entry's range holds exactly its value, and its array header matches the decoded array.
    static func checkEntries(_ f: GGUFFile) throws {
        for e in f.entries {
            let value = f.value(of: e)
            #expect(value.type == e.type, "\(e.key)")
            #expect(e.arrayElementType == value.elementType, "\(e.key)")
            #expect(e.arrayCount == value.array?.count, "\(e.key)")
            var r = ByteReader(f.file.slice(e.range))
            #expect(try r.readGGUFValue(e.type, key: e.key) == value)
            #expect(r.remaining == 0, "\(e.key)")
            #expect(f.stringArray(e.key) == value.stringArray, "\(e.key)")
            #expect(f.entry(e.key) == e)
        }
        // Entries tile the metadata section: each starts after the previous one's key and type id.
        for (a, b) in zip(f.entries, f.entries.dropFirst()) {
            #expect(b.range.lowerBound == a.range.upperBound + 8 + b.key.utf8.count + 4)
        }
        #expect(f.entry("missing") == nil && f.stringArray("missing") == nil)
    }

    @Test(arguments: ["every_type", "aligned64"])
    func entriesDescribeTheirValues(_ name: String) throws {
        let f = try GGUFFile(path: TestPaths.fixture("FormatsTests", "gguf/\(name).gguf"))
        try Self.checkEntries(f)
        #expect(f.stringArray("tokenizer.ggml.tokens") == ["<s>", "</s>", "", "héllo", "▁world"] || name != "every_type")
        #expect(f.stringArray("test.array.int16") == nil)
    }

    @Test(.enabled(if: RealModel.available))
    func realModelEntries() throws {
        let f = try GGUFFile(path: RealModel.path)
        try Self.checkEntries(f)
        let tokens = try #require(f.entry("tokenizer.ggml.tokens"))
        #expect(tokens.arrayElementType == .string && tokens.arrayCount == 49152)
        #expect(f.entry("tokenizer.ggml.merges")?.arrayCount == 48900)
        #expect(f.entry("tokenizer.ggml.token_type")?.arrayElementType == .int32)
    }

    /// Without `<arch>.vocab_size` the vocabulary size comes from the token array's entry, not a decode.
    @Test func vocabularySizeFromTheTokenArrayEntry() throws {
        let meta: [(key: String, value: GGUFValue)] = [
            ("general.architecture", .text("llama")), ("llama.block_count", .uint32(1)),
            ("llama.embedding_length", .uint32(32)), ("llama.attention.head_count", .uint32(4)),
            ("llama.context_length", .uint32(64)), ("tokenizer.ggml.tokens", .strings((0..<37).map { "t\($0)" })),
        ]
        let f = try openGGUF(try GGUFWriter(metadata: meta).serialized())
        var decoded = 0
        let hp = try ModelConfig(gguf: { key in decoded += key == "tokenizer.ggml.tokens" ? 1 : 0; return f[key] },
                                     arrayCount: { f.entry($0)?.arrayCount }, hasOutputTensor: false)
        #expect(hp.vocabSize == 37)
        #expect(decoded == 0)
        // Callers that pass no counter still get it by decoding, as before.
        #expect(try ModelConfig(gguf: { f[$0] }, hasOutputTensor: false).vocabSize == 37)
    }
}
