import Formats

// Llama, Llama 2 and Llama 3 (transformers LlamaForCausalLM): RMSNorm, grouped-query attention with
// rotate-half RoPE, a SiLU-gated MLP; optional `attention_bias` on all four projections.
//   h = x + Attn(RMS1(x));  out = h + W_down (silu(W_gate z) ⊙ W_up z),  z = RMS2(h)
// Llama 3 (`rope_type: llama3`) divides each RoPE frequency by a per-frequency factor
// (`Llama3RopeScaling`, or a GGUF's `rope_freqs.weight`); `ModelWeights.ropeDivisors` holds them and
// RoPE's forward and backward both read them. A GGUF permutes this architecture's Q/K rows
// (`Architecture.ggufPermutesQK`): the checkpoint layer undoes it, the engine sees HF's order.

struct LlamaEngine: ArchitectureEngine {
    let traits = ArchitectureTraits(norm: .rmsNorm, rotary: .rotateHalf, mlp: .swiGLU)

    func layerWeights(_ l: Int, _ cfg: ModelConfig, _ src: TensorLoader) throws -> LayerWeights {
        try Self.layer(l, cfg, src)
    }

    /// The llama layer layout, shared by the architectures that differ from llama only in their block.
    static func layer(_ l: Int, _ cfg: ModelConfig, _ src: TensorLoader) throws -> LayerWeights {
        LayerWeights(attnNorm: try src.norm(l, "attn_norm", cfg), attention: try src.separateAttention(l, cfg),
                     ffnNorm: try src.norm(l, "ffn_norm", cfg), mlp: try src.gatedMLP(l, cfg))
    }
}
