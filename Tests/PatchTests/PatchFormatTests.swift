import Foundation
import Formats
import Testing
@testable import Patch

/// Small patches used by the format and corruption tests: a BF16 tensor edited twice (rank 2 then 1)
/// with an edit record, and a Q4_1 tensor promoted to F32.
enum Samples {
    static let request = RecordedRequest(prompt: "{} plays the sport of", subject: "LeBron James", targetNew: "football", targetTrue: "basketball")

    static func model() -> [String: TensorBytes] {
        var rng = SeededRNG(seed: 2026)
        return ["blk.1.ffn_down.weight": Gen.tensor(.bf16, rows: 16, cols: 48, rng: &rng),
                "blk.2.ffn_down.weight": Gen.tensor(.q4_1, rows: 8, cols: 64, rng: &rng)]
    }

    static func patch() throws -> Patch {
        var rng = SeededRNG(seed: 11)
        let m = model()
        var b = PatchBuilder(architecture: "llama", format: "gguf", metadata: ["tool": "wilke test"])
        let edit = EditRecord(requests: [request], method: "wilke", layer: 1, scores: [0: 0.25, 1: 0.75, 10: -1e-5],
                              hyperParameters: ["lr": "0.5", "steps": "20"])
        var (u, v) = Gen.factors(rows: 16, cols: 48, rank: 2, relative: 0.05, rng: &rng)
        let t1 = try b.add(tensor: "blk.1.ffn_down.weight", layout: .rowMajor, base: m["blk.1.ffn_down.weight"]!, u: u, v: v, rank: 2, edits: [edit])
        (u, v) = Gen.factors(rows: 8, cols: 64, rank: 1, relative: 0.05, rng: &rng)
        try b.add(tensor: "blk.2.ffn_down.weight", layout: .rowMajor, base: m["blk.2.ffn_down.weight"]!, u: u, v: v, rank: 1, scale: 2)
        (u, v) = Gen.factors(rows: 16, cols: 48, rank: 1, relative: 0.05, rng: &rng)
        try b.add(tensor: "blk.1.ffn_down.weight", layout: .rowMajor, base: t1, u: u, v: v, rank: 1)
        return b.build()
    }

    /// .wpatch bytes around arbitrary content (for crafted, internally inconsistent manifests).
    static func wrap(_ content: [UInt8], major: UInt16 = 1, minor: UInt16 = 0) throws -> [UInt8] {
        var w = ByteWriter()
        w.write(bytes: PatchFormat.magic)
        w.write(major)
        w.write(minor)
        w.write(bytes: try content.withUnsafeBytes { try Zstd.compress($0) })
        return w.bytes
    }

    static func content(manifest: [UInt8], binary: [UInt8]) -> [UInt8] {
        var w = ByteWriter()
        w.write(UInt64(manifest.count))
        w.write(bytes: manifest)
        w.write(bytes: binary)
        return w.bytes
    }

    /// Re-encodes `patch` after `edit` changed its manifest, with a correct id, so only the edited
    /// field is wrong.
    static func tampered(_ patch: Patch, binary edit2: ((inout [UInt8]) -> Void)? = nil, _ edit: (inout [String: JSONValue]) -> Void) throws -> [UInt8] {
        var (m, binary) = patch.manifestWithoutID()
        edit(&m)
        edit2?(&binary)
        m["id"] = .string(Patch.contentID(manifest: m.filter { $0.key != "id" }, binary: binary))
        return try wrap(content(manifest: JSONValue.object(m).canonicalBytes(), binary: binary))
    }
}

@Suite("the .wpatch container, manifest and determinism")
struct PatchFormatTests {
    @Test func roundTripIsExactAndDeterministic() throws {
        let p = try Samples.patch()
        let bytes = try p.encode()
        #expect(try p.encode() == bytes)
        #expect(Array(bytes.prefix(12)) == PatchFormat.magic + [1, 0, 0, 0])
        let q = try Patch.decode(bytes)
        #expect(q == p)
        #expect(try q.encode() == bytes)
        #expect(q.id == p.id)
        #expect(q.steps[0].edits[0].scores == [0: 0.25, 1: 0.75, 10: -1e-5])
        #expect(q.steps[1].resultDType == .f32 && q.steps[1].dtype == .q4_1)
        // A rebuilt patch from the same inputs has the same id and bytes.
        #expect(try Samples.patch().encode() == bytes)
        print("sample patch: \(bytes.count) bytes, id \(p.id)")
    }

    @Test func manifestIsCanonicalAndReadable() throws {
        let p = try Samples.patch()
        let (m, binary) = p.manifestWithoutID()
        let json = String(decoding: JSONValue.object(m).canonicalBytes(), as: UTF8.self)
        #expect(json.hasPrefix(#"{"base":{"architecture":"llama","format":"gguf","tensors":[{"dtype":"BF16","layout":{"order":"row_major"},"name":"blk.1.ffn_down.weight","sha256":""#))
        #expect(json.contains(#""requests":[{"prompt":"{} plays the sport of","subject":"LeBron James","target_new":"football","target_true":"basketball"}]"#))
        #expect(json.contains(#""scores":[{"layer":0,"score":"0.25"},{"layer":1,"score":"0.75"},{"layer":10,"score":"-1e-05"}]"#))
        #expect(json.contains(#""residue":{"bytes":"#))
        // Binary area = Σ (rows + cols)·rank·4 + residue bytes.
        let expected = p.steps.reduce(0) { $0 + ($1.rows + $1.cols) * $1.rank * 4 + $1.residue.bytes.count }
        #expect(binary.count == expected)
        // The id is SHA-256 of u64 length ‖ manifest-without-id ‖ binary.
        #expect(p.id == Hash.sha256Hex(Samples.content(manifest: JSONValue.object(m).canonicalBytes(), binary: binary)))
    }

    @Test func canonicalJSON() throws {
        let text = #" { "b" : 1, "a" : [true, null, "x\"\n\u00e9\ud83d\ude00", -7], "é": {} } "#
        let v = try Array(text.utf8).withUnsafeBytes { try JSONValue.parse($0) }
        #expect(String(decoding: v.canonicalBytes(), as: UTF8.self) == "{\"a\":[true,null,\"x\\\"\\u000aé😀\",-7],\"b\":1,\"é\":{}}")
        for bad in ["{\"a\":1,\"a\":2}", "[1.5]", "[1e3]", "\"\u{1}\"", "[", "{\"a\" 1}", "tru", "[1] x", "\"\\ud800\"",
                    String(repeating: "[", count: 100) + String(repeating: "]", count: 100), "99999999999999999999"] {
            #expect(throws: PatchError.self, "\(bad)") { try Array(bad.utf8).withUnsafeBytes { try JSONValue.parse($0) } }
        }
    }

    @Test func floatText() {
        for x: Float in [0, -0.0, 1, 0.1, 1e-5, -3.4028235e38, .leastNonzeroMagnitude, .infinity, -.infinity, 0.015625, 1.0 / 3] {
            let s = FloatText.format(x)
            #expect(FloatText.parse(s)?.bitPattern == x.bitPattern, "\(s)")
        }
        #expect(FloatText.format(.nan) == "nan")
        #expect(FloatText.parse("1.00") == nil)   // not the shortest form
        #expect(FloatText.parse("0x1p0") == nil)
    }

    /// Storage layouts: the transposed and the llama-permuted storage of a tensor, patched, equal the
    /// same transform of the row-major patched tensor; and the fma chain matches a scalar loop over
    /// logical indices written independently here.
    @Test func layoutsAndScalarReference() throws {
        var rng = SeededRNG(seed: 5)
        let (rows, cols, k) = (12, 40, 3)
        let m = Gen.tensor(.f16, rows: rows, cols: cols, rng: &rng)
        let (u, v) = Gen.factors(rows: rows, cols: cols, rank: k, relative: 0.2, rng: &rng)
        let w = try ElementCodec.decode(m)  // logical row-major
        func stored(_ layout: StorageLayout) -> TensorBytes {
            var out = m
            for i in 0..<rows { for j in 0..<cols {
                let s = layout.storageIndex(row: i, col: j, rows: rows, cols: cols)
                out.bytes[2 * s] = m.bytes[2 * (i * cols + j)]
                out.bytes[2 * s + 1] = m.bytes[2 * (i * cols + j) + 1]
            } }
            return out
        }
        for layout in [StorageLayout.rowMajor, .conv1D, .permutedRows(heads: 2), .permutedRows(heads: 3)] {
            let base = stored(layout)
            let (_, result) = try TensorDelta.makeStep(tensor: "w", layout: layout, base: base, u: u, v: v, rank: k, scale: -1.5)
            for i in 0..<rows { for j in 0..<cols {
                var acc = w[i * cols + j]
                for t in 0..<k { acc = fmaf(u[i * k + t] * -1.5, v[j * k + t], acc) }
                let s = layout.storageIndex(row: i, col: j, rows: rows, cols: cols)
                let got = UInt16(result.bytes[2 * s]) | UInt16(result.bytes[2 * s + 1]) << 8
                #expect(got == Float16(acc).bitPattern, "\(layout) (\(i), \(j))")
            } }
        }
        // llama_rope(heads: 2) on 12 rows: half = 3; logical rows 0,1,2,3,4,5 → storage 0,2,4,1,3,5.
        let p = StorageLayout.permutedRows(heads: 2)
        #expect((0..<12).map { p.storageRow($0, rows: 12) } == [0, 2, 4, 1, 3, 5, 6, 8, 10, 7, 9, 11])
    }

    @Test func applyRefusesTheWrongTensor() throws {
        let p = try Samples.patch()
        var m = Samples.model()
        m["blk.1.ffn_down.weight"]!.bytes[0] ^= 1
        #expect(throws: PatchError.self) { try p.apply(to: m) }
        let good = Samples.model()
        var wrongType = good
        wrongType["blk.2.ffn_down.weight"]!.dtype = .q4_0
        #expect(throws: PatchError.self) { try p.apply(to: wrongType) }
        #expect(throws: PatchError.tensorNotFound("blk.2.ffn_down.weight")) { try p.apply(to: ["blk.1.ffn_down.weight": good["blk.1.ffn_down.weight"]!]) }
        let applied = try p.apply(to: good)
        // Reverting something that is not the patched tensor is refused too.
        #expect(throws: PatchError.self) { try p.revert(from: good) }
        #expect(try p.revert(from: applied) == good)
    }
}
