import Foundation
import Formats
@testable import Patch
import TestSupport

/// A tiny llama checkpoint written with our GGUF writer: the tensor kinds the patch layer must handle
/// (block-quantized promoted to F32, permuted Q/K rows, F16, a vector), plus file helpers.
enum TinyModel {
    static let dModel = 64, dFF = 128, heads = 4, kvHeads = 2

    /// Writes the GGUF to `path` (seeded, deterministic).
    static func writeGGUF(_ path: String, seed: UInt64 = 1) throws {
        var rng = SeededRNG(seed: seed)
        func values(_ n: Int) -> [Float] { (0..<n).map { _ in rng.normal() * 0.02 } }
        let meta: [(key: String, value: GGUFValue)] = [
            ("general.architecture", .string("llama")), ("general.name", .string("tiny")),
            ("llama.block_count", .uint32(1)), ("llama.context_length", .uint32(128)),
            ("llama.embedding_length", .uint32(UInt32(dModel))), ("llama.feed_forward_length", .uint32(UInt32(dFF))),
            ("llama.attention.head_count", .uint32(UInt32(heads))), ("llama.attention.head_count_kv", .uint32(UInt32(kvHeads))),
            ("llama.vocab_size", .uint32(32)), ("llama.attention.layer_norm_rms_epsilon", .float32(1e-5)),
        ]
        var w = GGUFWriter(metadata: meta)
        let tensors: [(String, [Int], DType)] = [
            ("token_embd.weight", [dModel, 32], .q8_0),
            ("blk.0.attn_norm.weight", [dModel], .f32),
            ("blk.0.attn_q.weight", [dModel, dModel], .f32),
            ("blk.0.attn_k.weight", [dModel, dModel / heads * kvHeads], .f16),
            ("blk.0.ffn_down.weight", [dFF, dModel], .q4_1),
            ("output_norm.weight", [dModel], .f32),
        ]
        var keep: [[UInt8]] = []
        for (name, ne, dtype) in tensors {
            let bytes = try TensorCodec.quantize(dtype, values(ne.reduce(1, *)))
            keep.append(bytes)
        }
        for ((name, ne, dtype), bytes) in zip(tensors, keep) {
            w.addTensor(name: name, ne: ne, dtype: dtype, source: .fill { dst in dst.copyMemory(from: UnsafeRawBufferPointer(start: bytes, count: bytes.count)) })
        }
        try w.write(to: path, overwrite: true)
    }

    /// A patch on the tiny model: rank 1 on ffn_down (Q4_1 → F32), rank 2 on attn_q (F32, permuted
    /// rows), rank 1 twice on attn_k (F16).
    static func patch(_ ckpt: Checkpoint, seed: UInt64 = 7, subject: String = "Tiny", relative: Float = 0.05) throws -> Patch {
        var rng = SeededRNG(seed: seed)
        var b = PatchBuilder(architecture: ckpt.patchArchitecture, format: ckpt.patchFormat, metadata: ["tool": "test"])
        let edit = [EditRecord(requests: [RecordedRequest(prompt: "{} is a", subject: subject, targetNew: "model")], method: "rome", layer: 0)]
        for (name, rank, reps) in [(names(ckpt).down, 1, 1), (names(ckpt).q, 2, 1), (names(ckpt).k, 1, 2)] {
            let t = ckpt.tensor(name)!
            var current = ckpt.tensorBytes(t)
            for _ in 0..<reps {
                let (u, v) = Gen.factors(rows: current.rows, cols: current.cols, rank: rank, relative: relative, rng: &rng)
                current = try b.add(tensor: t.name, layout: t.stepLayout, base: current, u: u, v: v, rank: rank, edits: edit)
            }
        }
        return b.build()
    }

    /// Stored names of the edited tensors (GGUF or Hugging Face naming).
    static func names(_ ckpt: Checkpoint) -> (down: String, q: String, k: String) {
        if ckpt.gguf != nil { return ("blk.0.ffn_down.weight", "blk.0.attn_q.weight", "blk.0.attn_k.weight") }
        return ("model.layers.0.mlp.down_proj.weight", "model.layers.0.self_attn.q_proj.weight", "model.layers.0.self_attn.k_proj.weight")
    }
}

func fileSHA(_ path: String) throws -> String {
    let f = try MappedFile(path: path)
    return Hash.sha256Hex(f.bytes)
}

/// SHA-256 of every regular file in a directory (or of the file), by name.
func treeSHA(_ path: String) throws -> [String: String] {
    var isDir: ObjCBool = false
    FileManager.default.fileExists(atPath: path, isDirectory: &isDir)
    guard isDir.boolValue else { return ["": try fileSHA(path)] }
    var out: [String: String] = [:]
    for name in try FileManager.default.contentsOfDirectory(atPath: path) { out[name] = try fileSHA(path + "/" + name) }
    return out
}

/// All tensors of a checkpoint as name → (dtype, bytes).
func tensorMap(_ c: Checkpoint) -> [String: TensorBytes] {
    Dictionary(uniqueKeysWithValues: c.tensors.map { ($0.name, c.tensorBytes($0)) })
}

/// Splits a Hugging Face directory's model.safetensors into shards of two tensors with an index.
func shard(_ dir: String, into out: String) throws {
    let ckpt = try Checkpoint.open(dir)
    let st = ckpt.safetensors[0]
    try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
    let parts = stride(from: 0, to: st.tensors.count, by: 2).map { Array(st.tensors[$0..<min($0 + 2, st.tensors.count)]) }
    var map: [String: String] = [:]
    for (k, part) in parts.enumerated() {
        let name = "model-0000\(k + 1)-of-0000\(parts.count).safetensors"
        try SafetensorsWriter.write(part.map { .init(name: $0.name, dtype: $0.dtype, shape: $0.shape, source: .bytes(st.data($0))) },
                                    metadata: ["format": "pt"], to: out + "/" + name)
        for t in part { map[t.name] = name }
    }
    let index = try JSONSerialization.data(withJSONObject: ["metadata": [:] as [String: Any], "weight_map": map], options: [.sortedKeys])
    try index.write(to: URL(fileURLWithPath: out + "/model.safetensors.index.json"))
    try FileManager.default.copyItem(atPath: dir + "/config.json", toPath: out + "/config.json")
}
