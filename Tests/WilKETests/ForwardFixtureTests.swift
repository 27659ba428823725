import Foundation
import Formats
import Testing
import TestSupport
@testable import WilKE

/// A HF safetensors checkpoint served under canonical names: the test-side stand-in for the lead's
/// checkpoint layer (GPT-2 Conv1D weights are stored [in, out] and are transposed here).
struct HFSafetensorsSource: WeightSource {
    let file: SafetensorsFile
    let arch: String

    init(dir: String, arch: String) throws {
        file = try SafetensorsFile(path: dir + "/model.safetensors")
        self.arch = arch
    }

    /// HF name and whether it is a Conv1D weight to transpose.
    func hfName(_ canonical: String) -> (String, Bool)? {
        let parts = canonical.split(separator: ".", maxSplits: 2).map(String.init)
        let gpt = arch == "gpt2" || arch == "gptj"
        let root = gpt ? "transformer" : "model"
        if parts[0] == "blk" {
            let l = parts[1], rest = parts[2]
            let (kind, suffix) = (String(rest.split(separator: ".")[0]), String(rest.split(separator: ".")[1]))
            let table: [String: String]
            switch arch {
            case "gpt2": table = ["attn_norm": "ln_1", "attn_qkv": "attn.c_attn", "attn_output": "attn.c_proj",
                                  "ffn_norm": "ln_2", "ffn_up": "mlp.c_fc", "ffn_down": "mlp.c_proj"]
            case "gptj": table = ["attn_norm": "ln_1", "attn_q": "attn.q_proj", "attn_k": "attn.k_proj",
                                  "attn_v": "attn.v_proj", "attn_output": "attn.out_proj", "ffn_up": "mlp.fc_in",
                                  "ffn_down": "mlp.fc_out"]
            default: table = ["attn_norm": "input_layernorm", "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj",
                              "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj",
                              "attn_q_norm": "self_attn.q_norm", "attn_k_norm": "self_attn.k_norm",
                              "ffn_norm": "post_attention_layernorm", "ffn_gate": "mlp.gate_proj",
                              "ffn_up": arch == "phi3" ? "mlp.gate_up_proj" : "mlp.up_proj", "ffn_down": "mlp.down_proj",
                              "attn_qkv": "self_attn.qkv_proj"]
            }
            guard let m = table[kind] else { return nil }
            let blocks = gpt ? "\(root).h" : "\(root).layers"
            return ("\(blocks).\(l).\(m).\(suffix)", arch == "gpt2" && suffix == "weight" && kind != "attn_norm" && kind != "ffn_norm")
        }
        let top: [String: String] = [
            "token_embd.weight": gpt ? "transformer.wte.weight" : "model.embed_tokens.weight",
            "position_embd.weight": "transformer.wpe.weight",
            "output_norm.weight": gpt ? "transformer.ln_f.weight" : "model.norm.weight",
            "output_norm.bias": "transformer.ln_f.bias",
            "output.weight": "lm_head.weight", "output.bias": "lm_head.bias",
        ]
        return top[canonical].map { ($0, false) }
    }

    func has(_ name: String) -> Bool { hfName(name).map { file.tensor(named: $0.0) != nil } ?? false }

    func tensor(_ name: String) throws -> (shape: [Int], values: [Float]) {
        guard let (hf, transpose) = hfName(name), let t = file.tensor(named: hf) else { throw WilKEError.missingTensor(name) }
        let vals = floats(file.data(t), t.elementCount)
        guard transpose, t.shape.count == 2 else { return (t.shape, vals) }
        let (r, c) = (t.shape[0], t.shape[1])
        var out = [Float](repeating: 0, count: vals.count)
        for i in 0..<r { for j in 0..<c { out[j * r + i] = vals[i * c + j] } }
        return ([c, r], out)
    }
}

func floats(_ raw: UnsafeRawBufferPointer, _ n: Int) -> [Float] {
    (0..<n).map { raw.loadUnaligned(fromByteOffset: $0 * 4, as: Float.self) }
}

/// One tiny fixture model and its Python reference activations.
struct FixtureModel {
    let arch: String
    let config: ModelConfig
    let model: TransformerModel
    let ref: SafetensorsFile

    init(_ arch: String) throws {
        self.arch = arch
        let dir = TestPaths.fixture("WilKETests", "models/\(arch)")
        config = try ModelConfig(configJSON: Data(contentsOf: URL(fileURLWithPath: dir + "/config.json")), path: dir + "/config.json")
        model = try TransformerModel(config: config, weights: HFSafetensorsSource(dir: dir, arch: arch))
        ref = try SafetensorsFile(path: dir + "/reference.safetensors")
    }

    func values(_ name: String) throws -> [Float] {
        let t = try #require(ref.tensor(named: name))
        return floats(ref.data(t), t.elementCount)
    }

    var rows: [[Int]] {
        get throws {
            try (0..<3).map { r in
                let t = try #require(ref.tensor(named: "tokens.row\(r)"))
                let raw = ref.data(t)
                return (0..<t.elementCount).map { Int(raw.loadUnaligned(fromByteOffset: $0 * 4, as: Int32.self)) }
            }
        }
    }
}

func maxAbsDiff(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count, "length \(a.count) vs \(b.count)")
    return zip(a, b).reduce(0) { max($0, abs($1.0 - $1.1)) }
}

let fixtureArchs = ["gpt2", "gptj", "llama", "qwen2", "qwen3", "mistral", "phi3", "llama3"]

@Suite struct ForwardFixtureTests {
    /// All rows packed in one batch: logits everywhere, keys and MLP outputs at every position of every layer.
    @Test(arguments: fixtureArchs) func matchesTransformers(arch: String) throws {
        let fx = try FixtureModel(arch)
        let rows = try fx.rows
        var batch = ForwardBatch.allLogits(rows)
        batch.tapLayers = Array(0..<fx.config.nLayer)
        batch.taps = batch.logitsAt
        let out = try fx.model.forward(batch)
        var worst: [String: Float] = [:]
        var i = 0
        for (r, row) in rows.enumerated() {
            let n = row.count
            let logits = Array(out.logits[i..<(i + n)].joined())
            worst["logits", default: 0] = max(worst["logits", default: 0], maxAbsDiff(logits, try fx.values("logits.row\(r)")))
            for l in 0..<fx.config.nLayer {
                let k = Array(out.keys[l]![i..<(i + n)].joined()), m = Array(out.mlpOut[l]![i..<(i + n)].joined())
                worst["key", default: 0] = max(worst["key", default: 0], maxAbsDiff(k, try fx.values("key.l\(l).row\(r)")))
                worst["mlp_out", default: 0] = max(worst["mlp_out", default: 0], maxAbsDiff(m, try fx.values("mlp_out.l\(l).row\(r)")))
            }
            i += n
        }
        print("\(arch) vs transformers, max abs diff:", worst.sorted { $0.key < $1.key })
        for (name, d) in worst { #expect(d <= 1e-4, "\(arch) \(name) max abs diff \(d)") }
    }

    /// ROME's hook (MLP output of a layer) and MEMIT's hook (residual after a block) against Python.
    @Test(arguments: fixtureArchs) func deltaHooksMatchTransformers(arch: String) throws {
        let fx = try FixtureModel(arch)
        let row0 = try fx.rows[0]
        let at = try #require(fx.ref.metadata["delta_layer_pos"]).split(separator: ",").compactMap { Int($0) }
        let (layer, pos) = (at[0], at[1])
        let delta = Intervention(layer: layer, vector: try fx.values("delta.vector"), at: [TokenPosition(row: 0, pos: pos)])
        var a = ForwardBatch.allLogits([row0]); a.mlpDelta = delta
        var b = ForwardBatch.allLogits([row0]); b.residualDelta = delta
        let da = maxAbsDiff(Array(try fx.model.forward(a).logits.joined()), try fx.values("logits_mlp_delta.row0"))
        let db = maxAbsDiff(Array(try fx.model.forward(b).logits.joined()), try fx.values("logits_resid_delta.row0"))
        print("\(arch) delta hooks max abs diff: mlp \(da), residual \(db)")
        #expect(da <= 1e-4 && db <= 1e-4)
    }

    /// The residual stream recorded after each block matches HF's block outputs.
    @Test(arguments: fixtureArchs) func residualCacheMatchesBlockOutputs(arch: String) throws {
        let fx = try FixtureModel(arch)
        let rows = try fx.rows
        for l in 1...fx.config.nLayer {
            var batch = ForwardBatch(sequences: rows)
            batch.cacheResidualAt = l
            let res = try #require(try fx.model.forward(batch).residual)
            var offset = 0, worst: Float = 0
            for r in 0..<3 {
                let n = rows[r].count * fx.config.dModel
                worst = max(worst, maxAbsDiff(Array(res.values[offset..<(offset + n)]), try fx.values("resid.l\(l - 1).row\(r)")))
                offset += n
            }
            #expect(worst <= 1e-4, "\(arch) residual entering layer \(l): \(worst)")
        }
    }
}
