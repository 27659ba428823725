import Foundation
import Formats
import Testing
import TestSupport
@testable import Patch

/// Patch → LoRA adapter → patch on the tiny llama GGUF (Q4_1 ffn_down, F32 attn_q with GGUF-permuted
/// rows, F16 attn_k edited twice): files read back with our own GGUF / safetensors readers have the
/// shapes llama.cpp and PEFT check, the factors survive exactly in f32, and bad adapters are refused.
@Suite("LoRA export and import")
struct LoRAAdapterTests {
    static func setUp() throws -> (URL, Checkpoint, Patch) {
        let dir = try TestPaths.scratch("lora")
        let path = dir.appendingPathComponent("tiny.gguf").path
        try TinyModel.writeGGUF(path)
        let ckpt = try Checkpoint.open(path)
        return (dir, ckpt, try TinyModel.patch(ckpt))
    }

    /// Per tensor, B = [scale·U₁ | scale·U₂ | …] and V = [V₁ | V₂ | …] of the patch, as U / V of one step.
    static func concatenated(_ p: Patch, _ tensor: String) -> (u: [Float], v: [Float], rank: Int) {
        let steps = p.steps.filter { $0.tensor == tensor }
        let r = steps.reduce(0) { $0 + $1.rank }, rows = steps[0].rows, cols = steps[0].cols
        var u = [Float](repeating: 0, count: rows * r), v = [Float](repeating: 0, count: cols * r)
        var t0 = 0
        for s in steps {
            for i in 0..<rows { for t in 0..<s.rank { u[i * r + t0 + t] = s.u[i * s.rank + t] * s.scale } }
            for j in 0..<cols { for t in 0..<s.rank { v[j * r + t0 + t] = s.v[j * s.rank + t] } }
            t0 += s.rank
        }
        return (u, v, r)
    }

    @Test func llamaLoRARoundTripIsExact() throws {
        let (dir, ckpt, p) = try Self.setUp()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("edit-lora.gguf").path
        let adapter = try LoRAExport.adapter(for: p, base: ckpt)
        try LlamaLoRAFile.write(adapter, dtype: .f32, rowPermutation: ckpt.ggufRowPermutation, to: out, overwrite: false)

        // What llama.cpp checks: general.type / adapter.type / alpha, a.ne = [in, r], b.ne = [r, out].
        let g = try GGUFFile(path: out)
        #expect(g["general.type"]?.string == "adapter")
        #expect(g["adapter.type"]?.string == "lora")
        #expect(g["general.architecture"]?.string == "llama")
        #expect(g["adapter.lora.alpha"]?.float == 2)  // the largest rank: attn_q and attn_k have 2
        for name in ["blk.0.ffn_down.weight", "blk.0.attn_q.weight", "blk.0.attn_k.weight"] {
            let w = ckpt.tensor(name)!
            let a = try #require(g.tensor(named: name + ".lora_a")), b = try #require(g.tensor(named: name + ".lora_b"))
            #expect(a.ne == [w.ne[0], 2] && b.ne == [2, w.ne[1]] && a.dtype == .f32, "\(name): \(a.ne) \(b.ne)")
        }

        let back = try LoRAImport.patch(from: try LlamaLoRAFile.read(g), base: ckpt, ggufRowOrder: true)
        #expect(back.steps.count == 3)
        for s in back.steps {
            let want = Self.concatenated(p, s.tensor)
            #expect(s.rank == want.rank && s.scale == 1, "\(s.tensor)")
            #expect(s.u == want.u && s.v == want.v, "\(s.tensor): factors differ")
        }
        // A single rank-one step comes back as the same arithmetic: same result bytes.
        let down = "blk.0.ffn_down.weight"
        #expect(back.steps.first { $0.tensor == down }?.resultSHA256 == p.steps.first { $0.tensor == down }?.resultSHA256)
        // The imported patch applies and reverts like any other.
        let applied = dir.appendingPathComponent("applied.gguf").path, reverted = dir.appendingPathComponent("reverted.gguf").path
        try CheckpointPatching.apply([back], to: ckpt, output: applied)
        try CheckpointPatching.revert([back], from: try Checkpoint.open(applied), output: reverted)
        #expect(try fileSHA(reverted) == (try fileSHA(ckpt.path)))
    }

    @Test func peftRoundTripAndStackedRank() throws {
        let (dir, ckpt, _) = try Self.setUp()
        defer { try? FileManager.default.removeItem(at: dir) }
        // Three rank-one edits of one tensor, stacked: one rank-3 LoRA pair.
        let t = ckpt.tensor("blk.0.ffn_down.weight")!
        var rng = SeededRNG(seed: 3)
        var patches: [Patch] = []
        var current = ckpt.tensorBytes(t)
        for _ in 0..<3 {
            var b = PatchBuilder(architecture: "llama", format: "gguf")
            let (u, v) = Gen.factors(rows: current.rows, cols: current.cols, rank: 1, relative: 0.02, rng: &rng)
            current = try b.add(tensor: t.name, layout: t.stepLayout, base: current, u: u, v: v, rank: 1)
            patches.append(b.build())
        }
        let stacked = try PatchStack.stack(patches)
        let adapter = try LoRAExport.adapter(for: stacked, base: ckpt)
        #expect(adapter.factors.map(\.rank) == [3])
        let out = dir.appendingPathComponent("peft").path
        try PEFTAdapter.write(adapter, dtype: .f32, huggingFaceName: { TensorNames.huggingFace(canonical: $0, architecture: .llama) },
                              baseModel: "tiny", to: out, overwrite: false)
        let st = try SafetensorsFile(path: out + "/adapter_model.safetensors")
        let key = "base_model.model.model.layers.0.mlp.down_proj"
        #expect(st.tensor(named: key + ".lora_A.weight")?.shape == [3, TinyModel.dFF])
        #expect(st.tensor(named: key + ".lora_B.weight")?.shape == [TinyModel.dModel, 3])
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/adapter_config.json"))) as? [String: Any]
        #expect(config?["peft_type"] as? String == "LORA" && config?["r"] as? Int == 3)
        #expect(config?["target_modules"] as? [String] == ["model.layers.0.mlp.down_proj"])

        let back = try LoRAImport.patch(from: try PEFTAdapter.read(out, architecture: "llama"), base: ckpt, ggufRowOrder: false)
        let want = Self.concatenated(stacked, t.name)
        #expect(back.steps.count == 1 && back.steps[0].rank == 3 && back.steps[0].u == want.u && back.steps[0].v == want.v)
    }

    @Test func peftRanksDifferPerModule() throws {
        let (dir, ckpt, p) = try Self.setUp()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("peft").path
        try PEFTAdapter.write(try LoRAExport.adapter(for: p, base: ckpt), dtype: .f32,
                              huggingFaceName: { TensorNames.huggingFace(canonical: $0, architecture: .llama) }, baseModel: "tiny", to: out, overwrite: false)
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/adapter_config.json"))) as? [String: Any]
        #expect(config?["r"] as? Int == 2)
        #expect((config?["rank_pattern"] as? [String: Int])?.values.sorted() == [1])
        let st = try SafetensorsFile(path: out + "/adapter_model.safetensors")
        // Q rows are back in Hugging Face order in a PEFT file: the logical factors, unpermuted.
        let q = try #require(st.tensor(named: "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight"))
        let bq = try TensorCodec.dequantize(.f32, st.data(q), count: q.elementCount)
        #expect(bq == Self.concatenated(p, "blk.0.attn_q.weight").u)
        let back = try LoRAImport.patch(from: try PEFTAdapter.read(out, architecture: "llama"), base: ckpt, ggufRowOrder: false)
        for s in back.steps { #expect(s.u == Self.concatenated(p, s.tensor).u, "\(s.tensor)") }
    }

    @Test func reducedPrecisionReportsItsError() throws {
        let (dir, ckpt, p) = try Self.setUp()
        defer { try? FileManager.default.removeItem(at: dir) }
        let adapter = try LoRAExport.adapter(for: p, base: ckpt)
        let (_, f16) = adapter.rounded(to: .f16), (_, bf16) = adapter.rounded(to: .bf16), (_, f32) = adapter.rounded(to: .f32)
        #expect(f32 == 0 && f16 > 0 && bf16 > f16)
        let out = dir.appendingPathComponent("a.gguf").path
        try LlamaLoRAFile.write(adapter, dtype: .bf16, to: out, overwrite: false)
        #expect(try GGUFFile(path: out).tensor(named: "blk.0.ffn_down.weight.lora_a")?.dtype == .bf16)
    }

    @Test func badAdaptersAreRefused() throws {
        let (dir, ckpt, p) = try Self.setUp()
        defer { try? FileManager.default.removeItem(at: dir) }
        // A model GGUF is not an adapter.
        #expect(throws: PatchError.self) { try LlamaLoRAFile.read(try GGUFFile(path: ckpt.path)) }
        do { _ = try LlamaLoRAFile.read(try GGUFFile(path: ckpt.path)) } catch let e as PatchError {
            guard case .invalidAdapter = e else { Issue.record("\(e)"); return }
        }
        var adapter = try LoRAExport.adapter(for: p, base: ckpt)
        // Another architecture.
        var gpt2 = adapter
        gpt2.architecture = "gpt2"
        #expect(throws: PatchError.adapterMismatch("the adapter is for gpt2, the base is llama")) {
            try LoRAImport.patch(from: gpt2, base: ckpt, ggufRowOrder: true)
        }
        // Another shape (a wider model's ffn_down).
        let f = adapter.factors[0]
        adapter.factors[0] = LoRAFactors(tensor: f.tensor, rows: f.rows, cols: f.cols * 2, rank: f.rank, b: f.b,
                                         a: f.a + f.a, alpha: f.alpha)
        #expect(throws: PatchError.self) { try LoRAImport.patch(from: adapter, base: ckpt, ggufRowOrder: true) }
        // A PEFT directory of another type, and a module the family does not have.
        let out = dir.appendingPathComponent("peft").path
        try PEFTAdapter.write(try LoRAExport.adapter(for: p, base: ckpt), dtype: .f32,
                              huggingFaceName: { TensorNames.huggingFace(canonical: $0, architecture: .llama) }, baseModel: "tiny", to: out, overwrite: false)
        #expect(throws: PatchError.adapterMismatch("module model.layers.0.mlp.down_proj does not exist in a gpt2 model")) {
            try PEFTAdapter.read(out, architecture: "gpt2")
        }
        let configPath = out + "/adapter_config.json"
        let text = try String(contentsOfFile: configPath, encoding: .utf8).replacingOccurrences(of: "\"LORA\"", with: "\"IA3\"")
        try text.write(toFile: configPath, atomically: true, encoding: .utf8)
        #expect(throws: PatchError.invalidAdapter(path: out, reason: "peft_type is IA3; wilke reads LORA adapters only")) {
            try PEFTAdapter.read(out, architecture: "llama")
        }
    }

    /// GPT-2 (Conv1D, fan_in_fan_out) and GPT-J module names, and back to canonical names.
    @Test(arguments: [("gpt2", "transformer.h.3.mlp.c_proj", true), ("gptj", "transformer.h.3.mlp.fc_out", false),
                      ("mistral", "model.layers.3.mlp.down_proj", false)])
    func peftModuleNamesPerFamily(architecture: String, module: String, fanInFanOut: Bool) throws {
        let dir = try TestPaths.scratch("lora-\(architecture)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let f = LoRAFactors(tensor: "blk.3.ffn_down.weight", rows: 4, cols: 6, rank: 1, b: [1, 2, 3, 4], a: [1, 0, -1, 0.5, 2, 0.25], alpha: 1)
        let out = dir.appendingPathComponent("peft").path
        try PEFTAdapter.write(LoRAAdapter(architecture: architecture, factors: [f]), dtype: .f32,
                              huggingFaceName: { TensorNames.huggingFace(canonical: $0, architecture: Architecture(name: architecture)!) },
                              baseModel: "m", to: out, overwrite: false)
        let st = try SafetensorsFile(path: out + "/adapter_model.safetensors")
        #expect(st.tensor(named: "base_model.model.\(module).lora_A.weight")?.shape == [1, 6])
        #expect(st.tensor(named: "base_model.model.\(module).lora_B.weight")?.shape == [4, 1])
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/adapter_config.json"))) as? [String: Any]
        #expect(config?["fan_in_fan_out"] as? Bool == fanInFanOut && config?["target_modules"] as? [String] == [module])
        let back = try PEFTAdapter.read(out, architecture: architecture)
        #expect(back.factors == [f])
    }
}
