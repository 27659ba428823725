import Formats

// Qwen2 / Qwen2.5 (transformers Qwen2ForCausalLM): Llama's block with biases on q, k and v (not on the
// output projection) whatever config.json says (`Architecture.impliedQKVBias`). Its window applies only
// with `use_sliding_window`, which the config reader refuses, so every layer attends fully. GGUF keeps
// HF's Q/K row order (NEOX rotary).

struct Qwen2Engine: ArchitectureEngine {
    let traits = LlamaEngine().traits

    func layerWeights(_ l: Int, _ cfg: ModelConfig, _ src: TensorLoader) throws -> LayerWeights {
        try LlamaEngine.layer(l, cfg, src)
    }
}
