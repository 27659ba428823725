#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A Hugging Face checkpoint directory opened as one set of tensors: either
/// `model.safetensors.index.json` + the shards it names, or a single `model.safetensors`.
///
/// The index (written by `transformers` / `huggingface_hub`, not part of the safetensors spec) is
/// `{"metadata": {...}, "weight_map": {tensor_name: shard_file}}`. It is held to the same standard as the
/// shards: it must be valid JSON without duplicate tensor names, name only plain files inside the
/// directory, and agree exactly with the shards — every mapped tensor is stored in the shard it names,
/// and every stored tensor is mapped. A disagreement means a partial download or a hand-edited
/// checkpoint, which is better refused than half-loaded.
public final class ShardedSafetensors: @unchecked Sendable {
    public static let indexName = "model.safetensors.index.json"
    public static let singleName = "model.safetensors"

    public let directory: String
    /// Open shards, in the order of `shardNames`.
    public let shards: [SafetensorsFile]
    /// Shard file names relative to `directory`, sorted.
    public let shardNames: [String]
    /// Tensor name -> index into `shards`.
    public let weightMap: [String: Int]

    public init(directory: String) throws {
        self.directory = directory
        let indexPath = directory + "/" + ShardedSafetensors.indexName
        let singlePath = directory + "/" + ShardedSafetensors.singleName
        if access(indexPath, F_OK) != 0 {
            guard access(singlePath, F_OK) == 0 else { throw FormatError.unknownFormat(path: directory) }
            let file = try SafetensorsFile(path: singlePath)
            shards = [file]
            shardNames = [ShardedSafetensors.singleName]
            weightMap = Dictionary(uniqueKeysWithValues: file.tensors.map { ($0.name, 0) })
            return
        }

        let mapping = try ShardedSafetensors.readIndex(path: indexPath)
        let names = Set(mapping.values).sorted()
        var shards: [SafetensorsFile] = []
        for name in names {
            let path = directory + "/" + name
            guard access(path, F_OK) == 0 else { throw FormatError.shardMissing(path: path) }
            shards.append(try SafetensorsFile(path: path))
        }
        let shardIndex = Dictionary(uniqueKeysWithValues: names.enumerated().map { ($1, $0) })
        let weightMap = mapping.mapValues { shardIndex[$0]! }

        for (tensor, shard) in weightMap.sorted(by: { $0.key < $1.key }) where shards[shard].tensor(named: tensor) == nil {
            throw FormatError.invalidIndex(path: indexPath,
                                           reason: "tensor '\(tensor)' is mapped to '\(names[shard])' but not stored there")
        }
        for (s, file) in shards.enumerated() {
            for t in file.tensors {
                guard let mapped = weightMap[t.name] else {
                    throw FormatError.invalidIndex(path: indexPath,
                                                   reason: "tensor '\(t.name)' in '\(names[s])' is missing from weight_map")
                }
                // Stored here but mapped elsewhere (where it is also stored): two copies.
                guard mapped == s else { throw FormatError.duplicateTensor(t.name) }
            }
        }
        self.shards = shards
        self.shardNames = names
        self.weightMap = weightMap
    }

    /// All tensor names, shard by shard in data order.
    public var names: [String] { shards.flatMap(\.names) }

    /// The metadata of the first shard (`transformers` writes the same `{"format": "pt"}` to all).
    public var metadata: [String: String] { shards.first?.metadata ?? [:] }

    public func locate(_ name: String) -> (shard: SafetensorsFile, tensor: SafetensorsTensor)? {
        guard let s = weightMap[name], let t = shards[s].tensor(named: name) else { return nil }
        return (shards[s], t)
    }

    /// The bytes of tensor `name` (a view into its shard's mapping); throws `.tensorNotFound`.
    public func data(named name: String) throws -> UnsafeRawBufferPointer {
        guard let found = locate(name) else { throw FormatError.tensorNotFound(name) }
        return found.shard.data(found.tensor)
    }

    /// The `weight_map` of an index file, checked: UTF-8, strict JSON, no duplicate tensor names,
    /// shard names that stay inside the directory.
    static func readIndex(path: String) throws -> [String: String] {
        let file = try MappedFile(path: path)
        guard String(validating: file.bytes, as: UTF8.self) != nil else {
            throw FormatError.invalidIndex(path: path, reason: "not valid UTF-8")
        }
        var scanner = JSONScanner(file.bytes)
        var map: [String: String]?
        do {
            try scanner.object { s, key in
                guard key == "weight_map" else { return try s.skipValue(depth: 1) }
                guard map == nil else { throw s.failure("duplicate key 'weight_map'") }
                var m: [String: String] = [:]
                try s.object { s, tensor in
                    s.skipWhitespace()
                    guard s.peek == UInt8(ascii: "\"") else { throw s.failure("shard of '\(tensor)' is not a string") }
                    let shard = try s.string()
                    guard m.updateValue(shard, forKey: tensor) == nil else {
                        throw FormatError.invalidIndex(path: path, reason: "duplicate tensor '\(tensor)' in weight_map")
                    }
                }
                map = m
            }
            try scanner.expectEnd()
        } catch let f as JSONScanner.Failure {
            throw FormatError.invalidIndex(path: path, reason: f.message)
        }
        guard let map else { throw FormatError.invalidIndex(path: path, reason: "no weight_map") }
        guard !map.isEmpty else { throw FormatError.invalidIndex(path: path, reason: "weight_map is empty") }
        for shard in Set(map.values).sorted() where shard.isEmpty || shard == "." || shard == ".." || shard.contains("/") {
            throw FormatError.invalidIndex(path: path, reason: "shard name '\(shard)' is not a file in the directory")
        }
        return map
    }
}
