import Crypto
import Foundation
import Testing
@testable import Formats
import TestSupport

@Suite struct GGUFWriterTests {
    /// Rewriting a gguf-py file with everything unchanged gives the same bytes.
    @Test(arguments: ["every_type", "aligned64"])
    func rewritesGGUFPyFixtureByteForByte(_ name: String) throws {
        let f = try GGUFFile(path: TestPaths.fixture("FormatsTests", "gguf/\(name).gguf"))
        let w = GGUFWriter(copying: f)
        let out = try w.serialized()
        #expect(out == Array(f.file.bytes))
        #expect(try w.headerBytes() == Array(f.file.bytes[0..<f.dataOffset]))
    }

    @Test(.enabled(if: RealModel.available))
    func rewritesRealModelByteForByte() throws {
        let f = try GGUFFile(path: RealModel.path)
        let dir = try TestPaths.scratch("gguf-rewrite")
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("copy.gguf").path
        try GGUFWriter(copying: f).write(to: out, overwrite: false)
        let copy = try MappedFile(path: out)
        let a = SHA256.hash(data: f.file.bytes), b = SHA256.hash(data: copy.bytes)
        print("original \(f.file.count) bytes sha256 \(a); rewrite \(copy.count) bytes sha256 \(b)")
        #expect(copy.count == f.file.count)
        #expect(a == b)
        #expect(throws: FormatError.outputExists(path: out)) { try GGUFWriter(copying: f).write(to: out, overwrite: false) }
    }

    /// Every value type, empty arrays, nested arrays and a non-UTF-8 string survive write → read → write.
    @Test func allValueTypesRoundTrip() throws {
        let metadata: [(key: String, value: GGUFValue)] = [
            ("general.architecture", .text("llama")),
            ("u8", .uint8(255)), ("i8", .int8(-128)), ("u16", .uint16(65535)), ("i16", .int16(-32768)),
            ("u32", .uint32(.max)), ("i32", .int32(.min)), ("f32", .float32(-.infinity)), ("bool", .bool(false)),
            ("str", .string(GGUFString(bytes: [0x61, 0xFF, 0xFE]))), ("u64", .uint64(.max)), ("i64", .int64(.min)),
            ("f64", .float64(.leastNonzeroMagnitude)),
            ("empty", .array(.float64, [])), ("empty_strings", .strings([])),
            ("strings", .strings(["", "ä", "a b"])), ("bools", .array(.bool, [.bool(true), .bool(false)])),
            ("nested", .array(.array, [.array(.uint8, [.uint8(1)]), .array(.string, [.text("x")]), .array(.int64, [])])),
        ]
        var w = GGUFWriter(version: 3, metadata: metadata)
        w.addTensor(name: "f", ne: [3, 2], dtype: .f32, source: .fill { buf in
            for i in 0..<6 { buf.storeBytes(of: Float(i).bitPattern, toByteOffset: 4 * i, as: UInt32.self) }
        })
        w.addTensor(name: "scalar", ne: [], dtype: .i32, source: .fill { $0.storeBytes(of: Int32(-7), as: Int32.self) })
        w.addTensor(name: "empty", ne: [0, 5], dtype: .q4_1, source: .fill { _ in })
        let bytes = try w.serialized()
        let f = try openGGUF(bytes)
        #expect(f.metadata.map(\.key) == metadata.map(\.key))
        for ((_, got), (key, want)) in zip(f.metadata, metadata) { #expect(got == want, "\(key)") }
        if case let .string(s) = try #require(f["str"]) { #expect(s.bytes == [0x61, 0xFF, 0xFE] && !s.isValidUTF8) }
        #expect(f.tensors.map(\.ne) == [[3, 2], [], [0, 5]])
        #expect(f.tensors.map(\.byteCount) == [24, 4, 0])
        #expect(f.tensors.map(\.offset) == [0, 32, 64])
        #expect(f.data(f.tensors[0]).withMemoryRebound(to: Float.self) { Array($0) } == [0, 1, 2, 3, 4, 5])
        #expect(f.data(f.tensors[1]).load(as: Int32.self) == -7)
        #expect(try GGUFWriter(copying: f).serialized() == bytes)
    }

    /// v2 has the v3 layout; only the version field differs.
    @Test func writesVersion2() throws {
        let meta: [(key: String, value: GGUFValue)] = [("general.architecture", .text("llama"))]
        var v2 = GGUFWriter(version: 2, metadata: meta), v3 = GGUFWriter(metadata: meta)
        let data: [UInt8] = Array(0..<8)
        try data.withUnsafeBytes { raw in
            v2.addTensor(name: "t", ne: [4], dtype: .f16, source: .bytes(raw))
            v3.addTensor(name: "t", ne: [4], dtype: .f16, source: .bytes(raw))
            let b2 = try v2.serialized(), b3 = try v3.serialized()
            #expect(b2[4..<8] == [2, 0, 0, 0] && b3[4..<8] == [3, 0, 0, 0])
            #expect(Array(b2[8...]) == Array(b3[8...]))
            let f = try openGGUF(b2)
            #expect(f.version == 2 && Array(f.data(f.tensors[0])) == data)
        }
    }

    @Test func alignmentFromMetadata() throws {
        var w = GGUFWriter(metadata: [("general.alignment", .uint32(64))])
        w.addTensor(name: "a", ne: [3], dtype: .f32, source: .fill { _ in })
        w.addTensor(name: "b", ne: [1], dtype: .f32, source: .fill { _ in })
        let f = try openGGUF(try w.serialized())
        #expect(f.alignment == 64 && f.dataOffset % 64 == 0 && f.tensors[1].offset == 64)
        #expect(f.file.count == f.dataOffset + 128)

        let mismatch = GGUFWriter(metadata: [], alignment: 64)
        #expect(throws: FormatError.badAlignment("writer alignment 64 differs from general.alignment (32)")) {
            try mismatch.headerBytes()
        }
        let wrongType = GGUFWriter(metadata: [("general.alignment", .uint64(64))])
        #expect(throws: FormatError.badAlignment("type is uint64, expected uint32")) { try wrongType.headerBytes() }
    }

    /// The writer refuses what the reader would refuse, before creating any output.
    @Test func writerValidates() throws {
        func header(_ meta: [(key: String, value: GGUFValue)], _ tensors: [(String, [Int], DType)] = []) throws {
            var w = GGUFWriter(metadata: meta)
            for (n, ne, t) in tensors { w.addTensor(name: n, ne: ne, dtype: t, source: .fill { _ in }) }
            _ = try w.headerBytes()
        }
        #expect(throws: FormatError.emptyKey(index: 1)) { try header([("a", .bool(true)), ("", .bool(true))]) }
        #expect(throws: FormatError.duplicateKey("a")) { try header([("a", .bool(true)), ("a", .int8(1))]) }
        #expect(throws: FormatError.invalidValueType(key: "m", type: GGUFValueType.int32.rawValue)) {
            try header([("m", .array(.uint8, [.uint8(1), .int32(2)]))])
        }
        var deep = GGUFValue.uint8(0)
        for _ in 0..<(GGUFValue.maxArrayDepth + 1) { deep = .array(deep.type, [deep]) }
        #expect(throws: FormatError.nestedArray(key: "d")) { try header([("d", deep)]) }
        let long = String(repeating: "n", count: 64)
        #expect(throws: FormatError.tensorNameTooLong(long)) { try header([], [(long, [1], .f32)]) }
        #expect(throws: FormatError.duplicateTensor("x")) { try header([], [("x", [1], .f32), ("x", [1], .f32)]) }
        #expect(throws: FormatError.tooManyDimensions(tensor: "x", count: 5)) { try header([], [("x", [1, 1, 1, 1, 1], .f32)]) }
        #expect(throws: FormatError.negativeDimension(tensor: "x")) { try header([], [("x", [-1], .f32)]) }
        #expect(throws: FormatError.rowNotBlockAligned(tensor: "x", ne0: 33, blockSize: 32)) { try header([], [("x", [33], .q8_0)]) }
        #expect(throws: FormatError.elementCountOverflow(tensor: "x")) { try header([], [("x", [1 << 40, 1 << 40], .f32)]) }
        #expect(throws: FormatError.unsupportedDType("F8_E4M3", operation: "GGUF")) { try header([], [("x", [1], .f8e4m3)]) }

        let dir = try TestPaths.scratch("gguf-writer")
        defer { try? FileManager.default.removeItem(at: dir) }
        let bytes: [UInt8] = [1, 2, 3]
        try bytes.withUnsafeBytes { (raw) throws in
            var w = GGUFWriter(metadata: [])
            w.addTensor(name: "x", ne: [1], dtype: .f32, source: .bytes(raw))
            let path = dir.appendingPathComponent("bad.gguf").path
            #expect(throws: FormatError.tensorInvalidInfo(tensor: "x", expectedBytes: 4, foundBytes: 3)) {
                try w.write(to: path, overwrite: false)
            }
            #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).isEmpty)
        }
    }

    /// A fill closure that throws leaves neither the output nor a temp file.
    @Test func failedFillLeavesNothing() throws {
        struct Boom: Error {}
        let dir = try TestPaths.scratch("gguf-fill")
        defer { try? FileManager.default.removeItem(at: dir) }
        var w = GGUFWriter(metadata: [])
        w.addTensor(name: "x", ne: [8], dtype: .f32, source: .fill { _ in throw Boom() })
        #expect(throws: Boom.self) { try w.write(to: dir.appendingPathComponent("x.gguf").path, overwrite: true) }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).isEmpty)
    }

    @Test func replaceSourceChangesOnlyThatTensor() throws {
        let f = try GGUFFile(path: TestPaths.fixture("FormatsTests", "gguf/every_type.gguf"))
        var w = GGUFWriter(copying: f)
        let t = try #require(f.tensor(named: "blk.0.attn_norm.weight"))
        let replaced = w.replaceSource(ofTensor: t.name, with: .fill { $0.storeBytes(of: Float(42), as: Float.self) })
        let missing = w.replaceSource(ofTensor: "nope", with: .fill { _ in })
        #expect(replaced && !missing)
        let out = try w.serialized()
        let original = Array(f.file.bytes)
        let start = f.dataOffset + t.offset
        #expect(out.count == original.count)
        #expect(Array(out[..<start]) == Array(original[..<start]))
        #expect(Array(out[(start + t.byteCount)...]) == Array(original[(start + t.byteCount)...]))
        let reread = try openGGUF(out)  // keep the mapping alive while its view is read
        #expect(reread.data(t).load(as: Float.self) == 42)
    }
}
