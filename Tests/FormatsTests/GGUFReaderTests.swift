import Foundation
import Testing
@testable import Formats
import TestSupport

/// Reads the gguf-py fixtures and the real SmolLM2 file and compares with what gguf-py wrote / reports
/// (samples/reference/make_gguf_fixtures.py).
@Suite struct GGUFReaderTests {
    /// A metadata value as encoded in the fixture JSON (see the script's docstring).
    struct RefValue: Decodable {
        let type: String
        let value: Scalar?
        let elem: String?
        let items: [RefValue]?

        enum Scalar: Decodable {
            case text(String), flag(Bool)
            init(from decoder: Decoder) throws {
                let c = try decoder.singleValueContainer()
                if let b = try? c.decode(Bool.self) { self = .flag(b) } else { self = .text(try c.decode(String.self)) }
            }
        }

        static func valueType(_ name: String) throws -> GGUFValueType {
            let names = ["UINT8", "INT8", "UINT16", "INT16", "UINT32", "INT32", "FLOAT32", "BOOL", "STRING", "ARRAY",
                         "UINT64", "INT64", "FLOAT64"]
            return try #require(names.firstIndex(of: name).flatMap { GGUFValueType(rawValue: UInt32($0)) })
        }

        func gguf() throws -> GGUFValue {
            if type == "ARRAY" {
                return .array(try Self.valueType(try #require(elem)), try #require(items).map { try $0.gguf() })
            }
            if case let .flag(b) = value { return .bool(b) }
            guard case let .text(s) = value else { throw FormatError.invalidConfigJSON(path: "json (no value)") }
            let hex = s.hasPrefix("0x") ? String(s.dropFirst(2)) : ""
            switch type {
            case "UINT8": return .uint8(try #require(UInt8(s)))
            case "INT8": return .int8(try #require(Int8(s)))
            case "UINT16": return .uint16(try #require(UInt16(s)))
            case "INT16": return .int16(try #require(Int16(s)))
            case "UINT32": return .uint32(try #require(UInt32(s)))
            case "INT32": return .int32(try #require(Int32(s)))
            case "UINT64": return .uint64(try #require(UInt64(s)))
            case "INT64": return .int64(try #require(Int64(s)))
            case "FLOAT32": return .float32(Float(bitPattern: try #require(UInt32(hex, radix: 16))))
            case "FLOAT64": return .float64(Double(bitPattern: try #require(UInt64(hex, radix: 16))))
            case "STRING": return .text(s)
            default: throw FormatError.invalidConfigJSON(path: "json (type \(type))")
            }
        }
    }

    struct RefKV: Decodable {
        let key: String
        let type: String
        let elem: String?
        let count: Int?
    }

    struct RefTensor: Decodable {
        let name: String
        let type: String
        let ne: [Int]
        let offset: Int
        let data_offset: Int
        let n_bytes: Int
        let hex: String?
    }

    struct RefFile: Decodable {
        let size: Int
        let alignment: Int
        let version: Int
        let data_offset: Int?
        let tensors: [RefTensor]
    }

    func checkTensors(_ f: GGUFFile, _ ref: [RefTensor]) {
        #expect(f.tensors.count == ref.count)
        for (t, r) in zip(f.tensors, ref) {
            #expect(t.name == r.name)
            #expect(t.dtype.name == r.type, "\(t.name)")
            #expect(t.ne == r.ne, "\(t.name)")
            #expect(t.shape == r.ne.reversed(), "\(t.name)")
            #expect(t.offset == r.offset, "\(t.name)")
            #expect(f.dataOffset + t.offset == r.data_offset, "\(t.name)")
            #expect(t.byteCount == r.n_bytes, "\(t.name)")
            if let hex = r.hex { #expect(Array(f.data(t)) == [UInt8](hex: hex), "\(t.name)") }
            #expect(f.tensor(named: r.name) == t)
        }
    }

    @Test(arguments: ["every_type", "aligned64"])
    func readsGGUFPyFixture(_ name: String) throws {
        let json = try Data(contentsOf: URL(fileURLWithPath: TestPaths.fixture("FormatsTests", "gguf/\(name).json")))
        struct Doc: Decodable { let kv: [Entry]; struct Entry: Decodable { let key: String } }
        let ref = try JSONDecoder().decode(RefFile.self, from: json)
        let keys = try JSONDecoder().decode(Doc.self, from: json).kv.map(\.key)
        struct Values: Decodable { let kv: [RefValue] }  // the same objects, read as values ("key" ignored)
        let values = try JSONDecoder().decode(Values.self, from: json).kv

        let f = try GGUFFile(path: TestPaths.fixture("FormatsTests", "gguf/\(name).gguf"))
        #expect(f.file.count == ref.size)
        #expect(Int(f.version) == ref.version)
        #expect(f.alignment == ref.alignment)
        #expect(f.dataOffset % f.alignment == 0)
        #expect(f.metadata.map(\.key) == keys)
        #expect(values.count == keys.count)
        for ((key, value), r) in zip(f.metadata, values) {
            let expected = try r.gguf()
            #expect(value == expected, "\(key)")
            #expect(f[key] == expected)
        }
        checkTensors(f, ref.tensors)
        #expect(f.architecture == "llama")
    }

    @Test func everyTypeAccessors() throws {
        let f = try GGUFFile(path: TestPaths.fixture("FormatsTests", "gguf/every_type.gguf"))
        #expect(f["general.name"]?.string == "smöl fixture ✓")
        #expect(f["test.uint64"]?.int == nil)  // 2^63 + 5 does not fit in Int
        #expect(f["test.int64"]?.int == -(1 << 62) - 7)
        #expect(f["test.float32"]?.float == Double(Float(0.1)))
        #expect(f["test.uint8"]?.float == 200)
        #expect(f["test.bool_true"]?.bool == true)
        #expect(f["test.empty_string"]?.string == "")
        #expect(f["tokenizer.ggml.tokens"]?.stringArray == ["<s>", "</s>", "", "héllo", "▁world"])
        #expect(f["test.array.int16"]?.intArray == [-32768, 0, 32767])
        #expect(f["test.array.nested_int32"]?.array?.map { $0.intArray ?? [] } == [[1, 2, 3], [-4]])
        #expect(f["test.array.nested_strings"]?.elementType == .array)
        #expect(f["missing"] == nil)
        #expect(f.tensor(named: "blk.0.four_d")?.shape == [2, 1, 3, 4])
    }

    @Test(.enabled(if: RealModel.available))
    func realModelMatchesGGUFPy() throws {
        let json = try Data(contentsOf: URL(fileURLWithPath: TestPaths.reference("smollm2_tensors.json")))
        let ref = try JSONDecoder().decode(RefFile.self, from: json)
        struct Doc: Decodable { let kv: [RefKV] }
        let kv = try JSONDecoder().decode(Doc.self, from: json).kv

        let f = try GGUFFile(path: RealModel.path)
        #expect(f.file.count == ref.size)
        #expect(Int(f.version) == ref.version)
        #expect(f.alignment == ref.alignment)
        #expect(f.dataOffset == ref.data_offset)
        #expect(f.tensors.count == 272)
        checkTensors(f, ref.tensors)
        #expect(f.metadata.map(\.key) == kv.map(\.key))
        for ((key, value), r) in zip(f.metadata, kv) {
            #expect(value.type == (try RefValue.valueType(r.type)), "\(key)")
            if let elem = r.elem { #expect(value.elementType == (try RefValue.valueType(elem)), "\(key)") }
            if let count = r.count { #expect(value.array?.count == count, "\(key)") }
        }
        #expect(f.architecture == "llama")
        #expect(f["llama.block_count"]?.int == 30)
        #expect(f["llama.embedding_length"]?.int == 576)
        #expect(f["tokenizer.ggml.tokens"]?.stringArray?.count == 49152)
    }
}
