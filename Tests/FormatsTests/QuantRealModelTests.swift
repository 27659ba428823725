import Foundation
import Testing
@testable import Formats
import TestSupport

/// Real tensors of the SmolLM2 Q4_1 GGUF (Q4_1, F32 and the Q8_0 embedding) dequantized by TensorCodec
/// against checksums of gguf-py's dequantization (Fixtures/quant/realmodel.json). Tensor offsets come
/// from gguf-py's reader, so this test does not depend on our GGUF reader.
@Suite("Quant on the real model")
struct QuantRealModelTests {
    struct Entry: Decodable {
        let tensor: String, dtype: String, offset: Int, bytes: Int, elements: Int, checksum: String
        let first: [Float]
    }

    static let entries: [Entry] = {
        struct File: Decodable { let tensors: [Entry] }
        let url = URL(fileURLWithPath: TestPaths.fixture("FormatsTests", "quant/realmodel.json"))
        guard let data = try? Data(contentsOf: url) else { return [] }
        return (try? JSONDecoder().decode(File.self, from: data).tensors) ?? []
    }()

    /// Σ bits[i] · (2i + 1) mod 2^64, as `checksum` in make_quant_fixtures.py.
    static func checksum(_ v: [Float]) -> UInt64 {
        var s: UInt64 = 0
        for i in v.indices { s = s &+ UInt64(v[i].bitPattern) &* UInt64(2 * i + 1) }
        return s
    }

    @Test(.enabled(if: RealModel.available))
    func dequantizedRealTensorsMatchGGUFPy() throws {
        let file = try MappedFile(path: RealModel.path)
        #expect(Self.entries.count == 4)
        for e in Self.entries {
            let t = try #require(DType.allCases.first { $0.name == e.dtype })
            let bytes = file.slice(e.offset..<e.offset + e.bytes)
            let got = try TensorCodec.dequantize(t, bytes, count: e.elements)
            let sum = Self.checksum(got)
            print("\(e.tensor) (\(e.dtype), \(e.elements) elements): checksum \(sum), gguf-py \(e.checksum)")
            #expect(Array(got.prefix(e.first.count)) == e.first, "\(e.tensor)")
            #expect(String(sum) == e.checksum, "\(e.tensor)")

            // Q8_0 re-quantizes to the same bytes (FORMATS.md §2.8); Q4_1 need not (d is re-derived from
            // max − min), so only Q8_0 is checked here.
            if t == .q8_0 {
                let again = try TensorCodec.quantize(t, got)
                #expect(again == Array(bytes), "\(e.tensor) round trip")
            }
        }
    }
}
