import Formats

// Qwen3 (transformers Qwen3ForCausalLM): Llama's block with an RMSNorm over each query and key head
// (q_norm / k_norm, weights [D], GGUF attn_q_norm / attn_k_norm) between the projection and RoPE, and
// usually a head size other than d_model / heads (0.6B: 16 × 128 over 1024). No biases.
//   q = RoPE(RMS_q(W_q z) per head),  k = RoPE(RMS_k(W_k z) per head)
// The backward recomputes z, W_q z and W_k z from the block input to run RMSNorm's backward per head.

struct Qwen3Engine: ArchitectureEngine {
    let traits = ArchitectureTraits(norm: .rmsNorm, rotary: .rotateHalf, mlp: .swiGLU, qkNorm: true)

    func layerWeights(_ l: Int, _ cfg: ModelConfig, _ src: TensorLoader) throws -> LayerWeights {
        let b = "blk.\(l)."
        return LayerWeights(attnNorm: try src.norm(l, "attn_norm", cfg), attention: try src.separateAttention(l, cfg),
                            qNorm: try src.load(b + "attn_q_norm.weight", [cfg.headDim]),
                            kNorm: try src.load(b + "attn_k_norm.weight", [cfg.headDim]),
                            ffnNorm: try src.norm(l, "ffn_norm", cfg), mlp: try src.gatedMLP(l, cfg))
    }
}
