import Formats

// Mistral (transformers MistralForCausalLM): Llama's layers with a sliding window on every layer: query
// position p attends to keys p − sliding_window + 1 ... p (transformers' sliding-window causal mask),
// in cached decoding too since the window is measured from absolute positions. llama.cpp writes a
// Mistral GGUF as `llama` with no window, so such a file runs as llama.

struct MistralEngine: ArchitectureEngine {
    let traits = LlamaEngine().traits

    func layerWeights(_ l: Int, _ cfg: ModelConfig, _ src: TensorLoader) throws -> LayerWeights {
        try LlamaEngine.layer(l, cfg, src)
    }

    func window(layer l: Int, _ cfg: ModelConfig) -> Int? { cfg.slidingWindow }
}
