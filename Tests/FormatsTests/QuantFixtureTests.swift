import Foundation
import Testing
@testable import Formats
import TestSupport

/// One case of Fixtures/quant/index.json (written by samples/reference/make_quant_fixtures.py).
struct QuantCase: Decodable, CustomStringConvertible {
    let kind: String
    let dtype: String
    let elements: Int
    let input: String
    let output: String

    var description: String { "\(kind) \(dtype)" }

    var type: DType {
        if let t = DType(safetensorsName: dtype) { return t }
        return DType.allCases.first { $0.name == dtype }!
    }

    static func bytes(_ name: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: URL(fileURLWithPath: TestPaths.fixture("FormatsTests", "quant/\(name)"))))
    }

    static func floats(_ name: String) throws -> [Float] {
        let b = try bytes(name)
        return b.withUnsafeBytes { raw in (0..<b.count / 4).map { raw.loadUnaligned(fromByteOffset: 4 * $0, as: Float.self) } }
    }

    static let all: [QuantCase] = {
        struct Index: Decodable { let cases: [QuantCase] }
        let url = URL(fileURLWithPath: TestPaths.fixture("FormatsTests", "quant/index.json"))
        guard let data = try? Data(contentsOf: url), let index = try? JSONDecoder().decode(Index.self, from: data)
        else { return [] }
        return index.cases
    }()
}

/// Bitwise float equality that treats every NaN as equal to every NaN.
func sameFloat(_ a: Float, _ b: Float) -> Bool {
    (a.isNaN && b.isNaN) || a.bitPattern == b.bitPattern
}

/// Distance in units in the last place between two finite floats of the same sign (for diagnostics).
func ulpDistance(_ a: Float, _ b: Float) -> Int {
    if a.isNaN || b.isNaN { return a.isNaN && b.isNaN ? 0 : Int.max }
    func key(_ x: Float) -> Int64 {
        let bits = Int64(x.bitPattern & 0x7FFF_FFFF)
        return x.sign == .minus ? -bits : bits
    }
    return Int(abs(key(a) - key(b)))
}

@Suite("Quant fixtures (gguf-py reference)")
struct QuantFixtureTests {
    @Test func indexIsPresent() {
        #expect(QuantCase.all.count == 21)
        #expect(Set(QuantCase.all.filter { $0.kind == "dequantize" }.map(\.type)) == [
            .f16, .bf16, .f64, .i8, .i16, .i32, .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K,
        ])
    }

    @Test("dequantize matches gguf-py bit for bit", arguments: QuantCase.all.filter { $0.kind == "dequantize" })
    func dequantize(_ c: QuantCase) throws {
        let input = try QuantCase.bytes(c.input)
        let expected = try QuantCase.floats(c.output)
        #expect(expected.count == c.elements)
        let got = try input.withUnsafeBytes { try TensorCodec.dequantize(c.type, $0, count: c.elements) }
        var mismatches = 0, maxUlp = 0, maxAbs: Float = 0, first: Int?
        for i in 0..<expected.count where !sameFloat(got[i], expected[i]) {
            mismatches += 1
            first = first ?? i
            maxUlp = max(maxUlp, ulpDistance(got[i], expected[i]))
            maxAbs = max(maxAbs, abs(got[i] - expected[i]))
        }
        print("dequantize \(c.dtype): \(c.elements) elements, \(mismatches) mismatches, max ulp \(maxUlp), max abs diff \(maxAbs)")
        if let first { print("  first mismatch at \(first): got \(got[first]), gguf-py \(expected[first])") }
        #expect(mismatches == 0)
    }

    @Test("quantize matches gguf-py byte for byte", arguments: QuantCase.all.filter { $0.kind == "quantize" })
    func quantize(_ c: QuantCase) throws {
        let input = try QuantCase.floats(c.input)
        let expected = try QuantCase.bytes(c.output)
        #expect(input.count == c.elements)
        let got = try TensorCodec.quantize(c.type, input)
        #expect(got.count == expected.count)
        if c.type == .f16 {
            // numpy keeps NaN payload bits that Swift's Float16(_:) sets the quiet bit in; both are NaN.
            let g = got.withUnsafeBytes { Array($0.bindMemory(to: UInt16.self)) }
            let e = expected.withUnsafeBytes { Array($0.bindMemory(to: UInt16.self)) }
            let bad = (0..<e.count).filter {
                !(g[$0] == e[$0] || (Float16(bitPattern: g[$0]).isNaN && Float16(bitPattern: e[$0]).isNaN))
            }
            print("quantize F16: \(bad.count) of \(e.count) differ; first: \(bad.first.map { "\(input[$0])" } ?? "-")")
            #expect(bad.isEmpty)
            return
        }
        let bb = c.type.blockBytes
        let badBlocks = (0..<expected.count / bb).filter { got[$0 * bb..<($0 + 1) * bb] != expected[$0 * bb..<($0 + 1) * bb] }
        print("quantize \(c.dtype): \(badBlocks.count) of \(expected.count / bb) blocks differ\(badBlocks.prefix(5).map { " #\($0)" }.joined())")
        for b in badBlocks.prefix(2) {
            print("  block \(b) input \(Array(input[b * c.type.blockSize..<(b + 1) * c.type.blockSize]))")
            print("  got     \(Array(got[b * bb..<(b + 1) * bb]))")
            print("  gguf-py \(Array(expected[b * bb..<(b + 1) * bb]))")
        }
        #expect(badBlocks.isEmpty)
    }

    /// Re-quantizing a dequantized block gives the same bytes (FORMATS.md §2.8, measured with gguf-py).
    @Test("quantize(dequantize(q)) == q", arguments: [DType.q4_0, .q8_0])
    func roundTrip(_ t: DType) throws {
        guard let c = QuantCase.all.first(where: { $0.kind == "quantize" && $0.type == t }) else {
            Issue.record("no quantize fixture for \(t.name)"); return
        }
        let q = try QuantCase.bytes(c.output)
        let values = try q.withUnsafeBytes { try TensorCodec.dequantize(t, $0, count: c.elements) }
        let again = try TensorCodec.quantize(t, values)
        let bb = t.blockBytes
        // Excluded: a scale that overflowed to inf (the 1e6-scale block) and all-zero blocks, whose
        // Q4_0 scale −0.0 comes back as +0.0 (max = −0.0 gives d = −0.0 / −8 = +0.0; gguf-py alike).
        let finite = (0..<q.count / bb).filter { b in
            let d = Float16(bitPattern: UInt16(q[b * bb]) | UInt16(q[b * bb + 1]) << 8)
            return d.isFinite && d != 0
        }
        let bad = finite.filter { again[$0 * bb..<($0 + 1) * bb] != q[$0 * bb..<($0 + 1) * bb] }
        print("round trip \(t.name): \(finite.count) finite-scale blocks, \(bad.count) differ")
        #expect(finite.count >= q.count / bb - 4)
        #expect(bad.isEmpty)
    }
}
