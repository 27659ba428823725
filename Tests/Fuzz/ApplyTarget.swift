import Foundation
import Formats
import Patch

// Fuzz target `apply`: the whole-file apply path (open → checks → streaming rewrite → provenance) on a
// small checkpoint whose bytes are the fuzz input, with a fixed valid patch for that checkpoint. Most
// mutations are refused by a check (header, hash, record); the ones that get through must produce an
// output that holds exactly the patch's result, keeps every other tensor's bytes, and reverts.

/// The fixed checkpoints and their patches, made once per process in a scratch directory (tmpfs when
/// there is one). With $WILKE_FUZZ_SEEDS set, the checkpoints are also written there as corpus seeds.
struct ApplyFixture {
    let dir: String
    let ggufPatch: Patch
    let safetensorsPatch: Patch

    static let shared: ApplyFixture = {
        do { return try ApplyFixture() } catch { preconditionFailure("apply fixture: \(error)") }
    }()

    init() throws {
        let base = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
        dir = base + "/wilke-fuzz-apply-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var state: UInt64 = 1
        func values(_ n: Int) -> [Float] {
            (0..<n).map { _ in state = state &* 6364136223846793005 &+ 1442695040888963407; return Float(Int64(bitPattern: state) >> 40) * 0x1p-30 }
        }
        // GGUF: a one-block llama with F32 and F16 matrices (both patchable in place).
        let meta: [(key: String, value: GGUFValue)] = [
            ("general.architecture", .string("llama")), ("llama.block_count", .uint32(1)), ("llama.context_length", .uint32(64)),
            ("llama.embedding_length", .uint32(32)), ("llama.feed_forward_length", .uint32(48)),
            ("llama.attention.head_count", .uint32(4)), ("llama.attention.head_count_kv", .uint32(2)),
            ("llama.vocab_size", .uint32(16)), ("llama.attention.layer_norm_rms_epsilon", .float32(1e-5)),
        ]
        var w = GGUFWriter(metadata: meta)
        for (name, ne, dtype) in [("token_embd.weight", [32, 16], DType.f32), ("blk.0.ffn_down.weight", [48, 32], .f32),
                                  ("blk.0.ffn_up.weight", [32, 48], .f16), ("output_norm.weight", [32], .f32)] {
            let bytes = try TensorCodec.quantize(dtype, values(ne.reduce(1, *)))
            w.addTensor(name: name, ne: ne, dtype: dtype, source: .fill { dst in bytes.withUnsafeBytes { dst.copyMemory(from: $0) } })
        }
        let gguf = dir + "/seed.gguf"
        try w.write(to: gguf, overwrite: true)
        // safetensors without config.json (architecture unknown).
        let entries = [("a.weight", [24, 16], DType.f32), ("b.weight", [16, 24], .f16), ("c.bias", [16], .f32)].map { name, shape, dtype in
            let bytes = (try? TensorCodec.quantize(dtype, values(shape.reduce(1, *)))) ?? []
            return SafetensorsWriter.Entry(name: name, dtype: dtype, shape: shape, source: .fill { dst in bytes.withUnsafeBytes { dst.copyMemory(from: $0) } })
        }
        let st = dir + "/seed.safetensors"
        try SafetensorsWriter.write(entries, metadata: ["format": "pt"], to: st, overwrite: true)

        func patch(_ path: String, _ tensors: [String]) throws -> Patch {
            let ckpt = try Checkpoint.open(path)
            var b = PatchBuilder(architecture: ckpt.patchArchitecture, format: ckpt.patchFormat)
            for name in tensors {
                let t = ckpt.tensor(name)!
                let base = ckpt.tensorBytes(t)
                try b.add(tensor: t.name, layout: t.stepLayout, base: base, u: values(base.rows).map { $0 * 0.1 },
                          v: values(base.cols).map { $0 * 0.1 }, rank: 1)
            }
            return b.build()
        }
        ggufPatch = try patch(gguf, ["blk.0.ffn_down.weight", "blk.0.ffn_up.weight"])
        safetensorsPatch = try patch(st, ["a.weight", "b.weight"])
        if let seeds = ProcessInfo.processInfo.environment["WILKE_FUZZ_SEEDS"] {
            for f in [gguf, st] { _ = try? FileManager.default.copyItem(atPath: f, toPath: seeds + "/" + (f as NSString).lastPathComponent) }
        }
    }
}

/// How many inputs got as far as a written output (reported by the replayer, to show seeds do).
nonisolated(unsafe) var fuzzApplyWrites = 0

func fuzzApply(_ data: UnsafeRawBufferPointer) {
    let fx = ApplyFixture.shared
    let isGGUF = data.starts(with: Array("GGUF".utf8))
    let input = fx.dir + (isGGUF ? "/in.gguf" : "/in.safetensors"), out = fx.dir + "/out", back = fx.dir + "/back"
    guard FileManager.default.createFile(atPath: input, contents: Data(data)), let ckpt = try? Checkpoint.open(input) else { return }
    let patch = isGGUF ? fx.ggufPatch : fx.safetensorsPatch
    guard (try? CheckpointPatching.apply([patch], to: ckpt, output: out, options: PatchingOptions(overwrite: true))) != nil else { return }
    fuzzApplyWrites += 1
    // The apply succeeded, so the output must be a checkpoint holding exactly the patch's result.
    guard let edited = try? Checkpoint.open(out) else { preconditionFailure("apply wrote an output that does not open") }
    let v = try? CheckpointPatching.verify(patch, against: edited)
    precondition(v?.state == .applied, "the output does not hold the patch: \(String(describing: v))")
    let touched = Set(patch.touchedTensors)
    for t in ckpt.tensors where !touched.contains(t.name) {
        precondition(edited.tensor(t.name).map { edited.tensorBytes($0) } == ckpt.tensorBytes(t), "untouched tensor \(t.name) changed")
    }
    guard (try? CheckpointPatching.revert([patch], from: edited, output: back, options: PatchingOptions(overwrite: true))) != nil,
          let reverted = try? Checkpoint.open(back) else { preconditionFailure("an applied patch does not revert") }
    for t in ckpt.tensors {
        precondition(reverted.tensor(t.name).map { reverted.tensorBytes($0) } == ckpt.tensorBytes(t), "revert did not restore \(t.name)")
    }
}
