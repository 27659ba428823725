import Formats

// GPT-J (transformers GPTJForCausalLM): one LayerNorm feeding attention and MLP in parallel, rotary on
// the first `rotary_dim` dims of each head with GPT-J's interleaved pairs (rotate_every_two), no
// attention biases, a biased GELU MLP and a biased LM head.
//   out = x + Attn(LN1(x)) + MLP(LN1(x))

struct GPTJEngine: ArchitectureEngine {
    let traits = ArchitectureTraits(norm: .layerNorm, rotary: .interleaved, mlp: .gelu, parallel: true, headBias: true)

    func layerWeights(_ l: Int, _ cfg: ModelConfig, _ src: TensorLoader) throws -> LayerWeights {
        let b = "blk.\(l).", (c, f) = (cfg.dModel, cfg.dFF)
        let mlp = MLPWeights(wGate: nil, wUp: try src.matrix(b + "ffn_up.weight", [f, c]), wDown: try src.matrix(b + "ffn_down.weight", [c, f]),
                             bUp: try src.load(b + "ffn_up.bias", [f]), bDown: try src.load(b + "ffn_down.bias", [c]))
        return LayerWeights(attnNorm: try src.norm(l, "attn_norm", cfg), attnNormBias: try src.load(b + "attn_norm.bias", [c]),
                            attention: try src.separateAttention(l, cfg), ffnNorm: nil, mlp: mlp)
    }
}
