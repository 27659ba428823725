import Formats

// GPT-2 (transformers GPT2LMHeadModel; llm.c train_gpt2.c): learned positions, LayerNorm with biases,
// q, k, v fused in c_attn, a GELU (tanh) MLP, every projection biased, the head tied to the embedding.
//   h = x + Attn(LN1(x));  out = h + MLP(LN2(h))

struct GPT2Engine: ArchitectureEngine {
    let traits = ArchitectureTraits(norm: .layerNorm, rotary: .none, mlp: .gelu, learnedPositions: true)

    func layerWeights(_ l: Int, _ cfg: ModelConfig, _ src: TensorLoader) throws -> LayerWeights {
        let b = "blk.\(l).", (c, f) = (cfg.dModel, cfg.dFF)
        // c_attn's rows [0, C) are q, [C, 2C) k, [2C, 3C) v (views of the one stored matrix).
        let qkv = try src.matrix(b + "attn_qkv.weight", [3 * c, c]), bias = try src.load(b + "attn_qkv.bias", [3 * c])
        let attention = AttentionWeights(wq: qkv.rows(0..<c), wk: qkv.rows(c..<(2 * c)), wv: qkv.rows((2 * c)..<(3 * c)),
                                         wo: try src.matrix(b + "attn_output.weight", [c, c]),
                                         bq: src.part(bias, 0, c), bk: src.part(bias, 1, c), bv: src.part(bias, 2, c),
                                         bo: try src.load(b + "attn_output.bias", [c]))
        let mlp = MLPWeights(wGate: nil, wUp: try src.matrix(b + "ffn_up.weight", [f, c]), wDown: try src.matrix(b + "ffn_down.weight", [c, f]),
                             bUp: try src.load(b + "ffn_up.bias", [f]), bDown: try src.load(b + "ffn_down.bias", [c]))
        return LayerWeights(attnNorm: try src.norm(l, "attn_norm", cfg), attnNormBias: try src.load(b + "attn_norm.bias", [c]),
                            attention: attention, ffnNorm: try src.norm(l, "ffn_norm", cfg),
                            ffnNormBias: try src.load(b + "ffn_norm.bias", [c]), mlp: mlp)
    }
}
