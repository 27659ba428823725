import Foundation

/// One tensor of a checkpoint, wherever it is stored.
public struct CheckpointTensor: Sendable, Equatable {
    /// The name as stored in the file.
    public let name: String
    /// GGUF-style canonical name (`blk.3.ffn_down.weight`), nil for tensors with no counterpart.
    public let canonicalName: String?
    public let dtype: DType
    /// Shape in row-major order (numpy / torch order, last dimension contiguous). For GGUF: `ne` reversed.
    public let shape: [Int]
    public let layout: StorageLayout
    /// Which of the checkpoint's files holds the bytes, and where (absolute offsets).
    public let fileIndex: Int
    public let fileRange: Range<Int>

    public var byteCount: Int { fileRange.count }
    public var elementCount: Int { shape.reduce(1, *) }
    /// GGUF's dimension order (`ne[0]` contiguous).
    public var ne: [Int] { shape.reversed() }
    /// The logical matrix shape [out, in] of a weight (y = W x); the stored shape for other tensors.
    public var logicalShape: [Int] { layout == .conv1D ? shape.reversed() : shape }
}

/// A model checkpoint opened for reading: a GGUF file, a safetensors file, or a Hugging Face directory
/// (`config.json`, `model.safetensors` or shards with `model.safetensors.index.json`, `tokenizer.json`).
/// Opening reads headers only; tensor bytes stay in the mappings until asked for.
public final class Checkpoint: @unchecked Sendable {
    public enum Format: Equatable, Sendable {
        case gguf(version: UInt32)
        case safetensors
        case huggingFaceDirectory(shards: Int)

        public var name: String {
            switch self {
            case let .gguf(v): return "GGUF v\(v)"
            case .safetensors: return "safetensors"
            case let .huggingFaceDirectory(n): return "Hugging Face directory (\(n) safetensors shard\(n == 1 ? "" : "s"))"
            }
        }
    }

    public let path: String
    public let format: Format
    /// The hyper-parameters; nil for a bare safetensors file with no config.json beside it, or when the
    /// header's architecture cannot be read by this build (`configError` says why).
    public let config: ModelConfig?
    /// Why the header gave no `config` although it names an architecture (unsupported, or its keys
    /// incomplete or invalid). The checkpoint still opens, so header tools (inspect, show, verify, diff)
    /// work on any model; whatever needs the hyper-parameters throws this (`requiredConfig`).
    public let configError: FormatError?
    /// The architecture the header names (GGUF `general.architecture`, config.json `model_type`), also
    /// when it is not supported.
    public let declaredArchitecture: String?
    public let tensors: [CheckpointTensor]
    /// The mapped files, indexed by `CheckpointTensor.fileIndex`.
    public let files: [MappedFile]
    public let gguf: GGUFFile?
    public let safetensors: [SafetensorsFile]
    /// Paths of the files beside the weights (HF directory): config.json, tokenizer.json.
    public let configPath: String?
    public let tokenizerPath: String?
    private let byName: [String: Int]

    /// The architecture's name as the header gives it (also one this build does not support).
    public var architecture: String? { config?.architecture.rawValue ?? declaredArchitecture }

    /// The hyper-parameters, or the reason there are none (the header's error, or no config.json).
    public func requiredConfig() throws -> ModelConfig {
        if let c = config { return c }
        throw configError ?? FormatError.missingConfig(path: path)
    }

    /// Hyper-parameters from a header, keeping a format error instead of throwing it (see
    /// `configError`). I/O and other errors still throw.
    private static func derive(_ body: () throws -> ModelConfig) throws -> (ModelConfig?, FormatError?) {
        do { return (try body(), nil) } catch let e as FormatError { return (nil, e) }
    }

    /// config.json's `model_type`, for `declaredArchitecture` (nil when unreadable).
    private static func modelType(_ config: Data) -> String? {
        ((try? JSONSerialization.jsonObject(with: config)) as? [String: Any])?["model_type"] as? String
    }

    public static func open(_ path: String) throws -> Checkpoint { try Checkpoint(path: path) }

    public init(path: String) throws {
        self.path = path
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw FormatError.io(path: path, operation: "open", errno: ENOENT)
        }
        if isDir.boolValue {
            let dir = path
            let sharded = try ShardedSafetensors(directory: dir)
            let configFile = dir + "/config.json"
            guard FileManager.default.fileExists(atPath: configFile) else { throw FormatError.missingConfig(path: dir) }
            let json = try FileAccess.read(configFile)
            let (hp, hpError) = try Checkpoint.derive { try ModelConfig(configJSON: json, path: configFile) }
            format = .huggingFaceDirectory(shards: sharded.shards.count)
            config = hp
            configError = hpError
            declaredArchitecture = hp?.architecture.rawValue ?? Checkpoint.modelType(json)
            configPath = configFile
            let tok = dir + "/tokenizer.json"
            tokenizerPath = FileManager.default.fileExists(atPath: tok) ? tok : nil
            gguf = nil
            safetensors = sharded.shards
            files = sharded.shards.map(\.file)
            tensors = Checkpoint.describe(safetensors: sharded.shards, config: hp)
        } else {
            let file = try MappedFile(path: path)
            let magic = file.count >= 4 ? Array(file.bytes[0..<4]) : []
            if magic == Array("GGUF".utf8) || (magic.count == 4 && path.hasSuffix(".gguf")) {
                let g = try GGUFFile(file: file)
                let (hp, hpError) = try Checkpoint.derive {
                    try ModelConfig(gguf: { g[$0] }, arrayCount: { g.entry($0)?.arrayCount },
                                    hasOutputTensor: g.tensor(named: "output.weight") != nil)
                }
                format = .gguf(version: g.version)
                config = hp
                configError = hpError
                declaredArchitecture = hp?.architecture.rawValue ?? g["general.architecture"]?.string
                gguf = g
                safetensors = []
                files = [file]
                configPath = nil
                tokenizerPath = nil
                tensors = g.tensors.map { t in
                    let shape = Array(t.ne.reversed())
                    let start = g.dataOffset + t.offset
                    return CheckpointTensor(
                        name: t.name, canonicalName: t.name, dtype: t.dtype, shape: shape,
                        // Without hyper-parameters no layout is known: rows as stored (header tools only).
                        layout: TensorNames.layout(canonical: t.name, architecture: hp?.architecture, isGGUF: true,
                                                   rank: shape.count, heads: hp?.nHead ?? 0, kvHeads: hp?.nKVHead ?? 0),
                        fileIndex: 0, fileRange: start..<(start + t.byteCount))
                }
            } else {
                let st: SafetensorsFile
                do { st = try SafetensorsFile(file: file) } catch let e as FormatError {
                    // A file that claims to be safetensors gets the precise reason; anything else that
                    // has neither GGUF's magic nor a valid safetensors header is "not a checkpoint".
                    if path.hasSuffix(".safetensors") { throw e }
                    throw FormatError.unknownFormat(path: path)
                }
                let configFile = (path as NSString).deletingLastPathComponent + "/config.json"
                let json = FileManager.default.fileExists(atPath: configFile) ? try FileAccess.read(configFile) : nil
                let (hp, hpError) = try json.map { j in try Checkpoint.derive { try ModelConfig(configJSON: j, path: configFile) } }
                    ?? (nil, nil)
                format = .safetensors
                config = hp
                configError = hpError
                declaredArchitecture = hp?.architecture.rawValue ?? json.flatMap(Checkpoint.modelType)
                gguf = nil
                safetensors = [st]
                files = [file]
                configPath = json == nil ? nil : configFile
                let tok = (path as NSString).deletingLastPathComponent + "/tokenizer.json"
                tokenizerPath = FileManager.default.fileExists(atPath: tok) ? tok : nil
                tensors = Checkpoint.describe(safetensors: [st], config: hp)
            }
        }
        var map: [String: Int] = [:]
        for (i, t) in tensors.enumerated() {
            map[t.name] = i
            if let c = t.canonicalName, map[c] == nil { map[c] = i }
        }
        byName = map
    }

    static func describe(safetensors files: [SafetensorsFile], config hp: ModelConfig?) -> [CheckpointTensor] {
        var out: [CheckpointTensor] = []
        for (i, f) in files.enumerated() {
            for t in f.tensors {
                let canonical = hp.flatMap { TensorNames.canonical(hf: t.name, architecture: $0.architecture) }
                let layout = hp.map {
                    TensorNames.layout(canonical: canonical ?? t.name, architecture: $0.architecture, isGGUF: false,
                                       rank: t.shape.count, heads: $0.nHead, kvHeads: $0.nKVHead)
                } ?? (t.shape.count == 2 ? .rowMajor : .vector)
                out.append(CheckpointTensor(name: t.name, canonicalName: canonical, dtype: t.dtype, shape: t.shape,
                                            layout: layout, fileIndex: i, fileRange: t.fileRange))
            }
        }
        return out
    }

    /// A tensor by stored or canonical name.
    public func tensor(_ name: String) -> CheckpointTensor? { byName[name].map { tensors[$0] } }

    /// The raw stored bytes (a view into the mapping).
    public func data(_ t: CheckpointTensor) -> UnsafeRawBufferPointer { files[t.fileIndex].slice(t.fileRange) }

    /// Lets the pages of a tensor read once leave the resident set (`MappedFile.releasePages`).
    public func releasePages(_ t: CheckpointTensor) { files[t.fileIndex].releasePages(t.fileRange) }

    /// The tensor's values as f32 in storage order (dequantized).
    public func floats(_ t: CheckpointTensor) throws -> [Float] {
        var out = [Float](repeating: 0, count: t.elementCount)
        try out.withUnsafeMutableBufferPointer { try TensorCodec.dequantize(t.dtype, data(t), into: $0) }
        return out
    }

    /// The logical matrix W [out, in] row-major in Hugging Face's row order: Conv1D storage is
    /// transposed and GGUF's Q/K row permutation undone (`StorageLayout.logical`). Non-matrices come
    /// back as stored.
    public func logical(_ t: CheckpointTensor) throws -> [Float] {
        try t.layout.logical(data(t), dtype: t.dtype, shape: t.shape)
    }
}
