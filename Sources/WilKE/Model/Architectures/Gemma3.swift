import Formats

// Gemma 3 (transformers Gemma3ForCausalLM): its own block (`TransformerModel.gemma3Block`,
// Gemma3Block.swift): sandwich norms, per-head QK-norm, GeGLU, embeddings scaled by √C, sliding layers
// with their own RoPE base. Its tensors are llama's plus the QK and post norms.

struct Gemma3Engine: ArchitectureEngine {
    let traits = ArchitectureTraits(norm: .rmsNorm, rotary: .rotateHalf, mlp: .geGLU, qkNorm: true, scaledEmbeddings: true)

    func layerWeights(_ l: Int, _ cfg: ModelConfig, _ src: TensorLoader) throws -> LayerWeights {
        let b = "blk.\(l)."
        return LayerWeights(attnNorm: try src.norm(l, "attn_norm", cfg), attention: try src.separateAttention(l, cfg),
                            qNorm: try src.load(b + "attn_q_norm.weight", [cfg.headDim]),
                            kNorm: try src.load(b + "attn_k_norm.weight", [cfg.headDim]),
                            postAttnNorm: try src.norm(l, "post_attention_norm", cfg),
                            ffnNorm: try src.norm(l, "ffn_norm", cfg), postFFNNorm: try src.norm(l, "post_ffw_norm", cfg),
                            mlp: try src.gatedMLP(l, cfg))
    }

    func window(layer l: Int, _ cfg: ModelConfig) -> Int? { cfg.isSlidingLayer(l) ? cfg.slidingWindow : nil }

    func forward(_ m: TransformerModel, _ l: Int, _ act: LayerActivations, _ pack: Packing, _ kv: inout [KVCache],
                 keepAttention: Bool, mlpDelta: ([Float], [Int])?) throws {
        try m.gemma3Block(l, act, pack, &kv, keepAttention: keepAttention, mlpDelta: mlpDelta)
    }

    /// `gemma3BlockBackward` (Gemma3Block+Backward.swift).
    func backward(_ m: TransformerModel, _ l: Int, _ act: LayerActivations, _ pack: Packing, _ batch: ForwardBatch,
                  dout: FloatBuffer) -> FloatBuffer {
        m.gemma3BlockBackward(l, act, pack, batch, dout: dout)
    }

    /// Its backward reads the post-norm inputs (attnOut, mlp) and xn, so each block keeps its own.
    var sharesTapeScratch: Bool { false }
}
