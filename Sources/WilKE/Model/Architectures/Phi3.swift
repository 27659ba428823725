import Formats

// Phi-3 (transformers Phi3ForCausalLM): Llama's block with q, k, v fused in one qkv_proj and gate, up in
// one gate_up_proj. llama.cpp's converter stores both unchanged: `attn_qkv` [H·D + 2·G·D, C] holds q
// rows, then k, then v; `ffn_up` [2F, C] holds the gate rows, then up (its fused SwiGLU takes the first
// half as the gate, as Phi3MLP's chunk does). The parts are row views of the stored matrices, no copy.
// An optional sliding window applies to every layer; GGUF keeps HF's Q/K rows (NEOX rotary).

struct Phi3Engine: ArchitectureEngine {
    let traits = LlamaEngine().traits

    func layerWeights(_ l: Int, _ cfg: ModelConfig, _ src: TensorLoader) throws -> LayerWeights {
        let b = "blk.\(l).", (c, f, qd, kvd) = (cfg.dModel, cfg.dFF, cfg.qDim, cfg.kvDim)
        let qkv = try src.matrix(b + "attn_qkv.weight", [qd + 2 * kvd, c])
        let attention = AttentionWeights(wq: qkv.rows(0..<qd), wk: qkv.rows(qd..<(qd + kvd)), wv: qkv.rows((qd + kvd)..<(qd + 2 * kvd)),
                                         wo: try src.matrix(b + "attn_output.weight", [c, qd]))
        let gateUp = try src.matrix(b + "ffn_up.weight", [2 * f, c])
        let mlp = MLPWeights(wGate: gateUp.rows(0..<f), wUp: gateUp.rows(f..<(2 * f)), wDown: try src.matrix(b + "ffn_down.weight", [c, f]))
        return LayerWeights(attnNorm: try src.norm(l, "attn_norm", cfg), attention: attention,
                            ffnNorm: try src.norm(l, "ffn_norm", cfg), mlp: mlp)
    }

    func window(layer l: Int, _ cfg: ModelConfig) -> Int? { cfg.slidingWindow }
}
