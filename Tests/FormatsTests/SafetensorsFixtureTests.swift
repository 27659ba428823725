import Foundation
import Testing
import TestSupport
@testable import Formats

/// Files written by Python `safetensors` 0.8 and `huggingface_hub` (samples/reference/
/// make_safetensors_fixtures.py), checked against manifests made from the tensors Python saved.
@Suite struct SafetensorsFixtureTests {
    static func fixture(_ name: String) -> String { TestPaths.fixture("FormatsTests", "safetensors/\(name)") }

    func expectMatches(_ manifest: SafetensorsManifest, tensors: [String: (SafetensorsTensor, UnsafeRawBufferPointer)]) {
        #expect(tensors.count == manifest.tensors.count)
        for m in manifest.tensors {
            guard let found = tensors[m.name] else {
                Issue.record("tensor '\(m.name)' missing")
                continue
            }
            let (tensor, data) = found
            #expect(tensor.dtype.safetensorsName == m.dtype, "\(m.name)")
            #expect(tensor.shape == m.shape, "\(m.name)")
            #expect(hexString(data) == m.hex, "\(m.name)")
        }
    }

    @Test(arguments: ["mixed", "plain"])
    func pythonFilesReadBackExactly(name: String) throws {
        let st = try SafetensorsFile(path: Self.fixture("\(name).safetensors"))
        let manifest = try SafetensorsManifest(path: Self.fixture("\(name).json"))
        #expect(st.metadata == manifest.metadata)
        expectMatches(manifest, tensors: Dictionary(uniqueKeysWithValues: st.tensors.map { ($0.name, ($0, st.data($0))) }))
    }

    /// Our writer, given the same tensors and metadata in any order, reproduces Python's file byte for byte.
    @Test(arguments: ["mixed", "plain"])
    func writerOutputIsByteIdenticalToPython(name: String) throws {
        let path = Self.fixture("\(name).safetensors")
        let st = try SafetensorsFile(path: path)
        let entries = st.tensors.reversed().map {
            SafetensorsWriter.Entry(name: $0.name, dtype: $0.dtype, shape: $0.shape, source: .bytes(st.data($0)))
        }
        let header = try SafetensorsWriter.header(for: entries, metadata: st.metadata)
        // Compared as text so that a mismatch prints readable JSON.
        #expect(String(decoding: header.bytes.dropFirst(8), as: UTF8.self)
            == String(decoding: st.file.bytes[8..<st.dataStart], as: UTF8.self))
        #expect(header.bytes.prefix(8).elementsEqual(st.file.bytes[0..<8]))

        let dir = try TestPaths.scratch("st-identical")
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("\(name).safetensors").path
        try SafetensorsWriter.write(entries, metadata: st.metadata, to: out)
        let ours = try Data(contentsOf: URL(fileURLWithPath: out))
        let theirs = try Data(contentsOf: URL(fileURLWithPath: path))
        #expect(ours == theirs, "ours \(ours.count) bytes, Python \(theirs.count) bytes")
    }

    @Test func shardedDirectoryOpensAsOne() throws {
        let sharded = try ShardedSafetensors(directory: Self.fixture("sharded"))
        #expect(sharded.shardNames == ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"])
        #expect(sharded.shards.count == 2)
        #expect(sharded.metadata == ["format": "pt"])
        #expect(sharded.weightMap["model.embed_tokens.weight"] == 1)
        #expect(sharded.weightMap["model.layers.0.mlp.up_proj.weight"] == 0)
        let manifest = try SafetensorsManifest(path: Self.fixture("sharded.json"))
        var found: [String: (SafetensorsTensor, UnsafeRawBufferPointer)] = [:]
        for name in sharded.names {
            let (shard, tensor) = try #require(sharded.locate(name))
            found[name] = (tensor, shard.data(tensor))
        }
        expectMatches(manifest, tensors: found)
        #expect(sharded.locate("nope") == nil)
        #expect(throws: FormatError.tensorNotFound("nope")) { try sharded.data(named: "nope") }
    }

    @Test func singleFileDirectoryOpensAsOneShard() throws {
        let dir = try TestPaths.scratch("st-single")
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.copyItem(atPath: Self.fixture("mixed.safetensors"),
                                         toPath: dir.appendingPathComponent("model.safetensors").path)
        let sharded = try ShardedSafetensors(directory: dir.path)
        #expect(sharded.shardNames == ["model.safetensors"])
        #expect(sharded.weightMap.count == 22)
        #expect(sharded.locate("scalar")?.tensor.shape == [])
    }

    /// A copy of the sharded fixture with its index replaced by `index` (or kept when nil).
    func shardedCopy(_ tag: String, index: String? = nil) throws -> URL {
        let dir = try TestPaths.scratch(tag)
        for file in try FileManager.default.contentsOfDirectory(atPath: Self.fixture("sharded")) {
            try FileManager.default.copyItem(atPath: Self.fixture("sharded/\(file)"), toPath: dir.appendingPathComponent(file).path)
        }
        if let index { try Data(index.utf8).write(to: dir.appendingPathComponent(ShardedSafetensors.indexName)) }
        return dir
    }

    @Test func missingShardIsReported() throws {
        let dir = try shardedCopy("st-missing")
        defer { try? FileManager.default.removeItem(at: dir) }
        let shard = dir.appendingPathComponent("model-00002-of-00002.safetensors").path
        try FileManager.default.removeItem(atPath: shard)
        #expect(throws: FormatError.shardMissing(path: shard)) { try ShardedSafetensors(directory: dir.path) }
    }

    @Test func badIndexesAreRejected() throws {
        let s1 = "model-00001-of-00002.safetensors", s2 = "model-00002-of-00002.safetensors"
        let index = try String(contentsOfFile: Self.fixture("sharded/\(ShardedSafetensors.indexName)"), encoding: .utf8)
        let cases: [(String, String)] = [
            ("not json", #"{"weight_map": {"a": "#),
            ("no weight_map", #"{"metadata": {}}"#),
            ("trailing garbage", index + "x"),
            ("non-string shard", #"{"weight_map": {"model.embed_tokens.weight": 1}}"#),
            ("escape from directory", #"{"weight_map": {"model.embed_tokens.weight": "../model.safetensors"}}"#),
            ("duplicate tensor", index.replacingOccurrences(
                of: #""model.embed_tokens.weight": "\#(s2)""#,
                with: #""model.embed_tokens.weight": "\#(s2)", "model.embed_tokens.weight": "\#(s2)""#)),
            ("mapped to the wrong shard", index.replacingOccurrences(
                of: #""model.embed_tokens.weight": "\#(s2)""#, with: #""model.embed_tokens.weight": "\#(s1)""#)),
            ("stored tensor not mapped", index.replacingOccurrences(
                of: #","# + "\n" + #"    "model.embed_tokens.weight": "\#(s2)""#, with: "")),
        ]
        for (label, text) in cases {
            #expect(text != index, "\(label): the edit did not apply")
            let dir = try shardedCopy("st-badindex", index: text)
            defer { try? FileManager.default.removeItem(at: dir) }
            let error = #expect(throws: FormatError.self, "\(label)") { try ShardedSafetensors(directory: dir.path) }
            guard case let .invalidIndex(path, reason)? = error else {
                Issue.record("\(label): expected invalidIndex, got \(String(describing: error))")
                continue
            }
            #expect(path.hasSuffix(ShardedSafetensors.indexName))
            print("\(label): \(reason)")
        }
        // A tensor stored in two shards: shard 1 also gets a copy of the shard-2 embedding.
        let dir = try shardedCopy("st-twice")
        defer { try? FileManager.default.removeItem(at: dir) }
        let first = try SafetensorsFile(path: Self.fixture("sharded/\(s1)"))
        let second = try SafetensorsFile(path: Self.fixture("sharded/\(s2)"))
        let copies = (first.tensors.map { ($0, first) } + [(second.tensor(named: "model.embed_tokens.weight")!, second)]).map { t, f in
            SafetensorsWriter.Entry(name: t.name, dtype: t.dtype, shape: t.shape, source: .bytes(f.data(t)))
        }
        try SafetensorsWriter.write(copies, metadata: first.metadata, to: dir.appendingPathComponent(s1).path, overwrite: true)
        #expect(throws: FormatError.duplicateTensor("model.embed_tokens.weight")) { try ShardedSafetensors(directory: dir.path) }
    }

    @Test func directoryWithoutSafetensorsIsUnknown() throws {
        let dir = try TestPaths.scratch("st-empty")
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(throws: FormatError.unknownFormat(path: dir.path)) { try ShardedSafetensors(directory: dir.path) }
    }
}
