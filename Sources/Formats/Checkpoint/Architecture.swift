/// The block structures the engine implements. Every supported `Architecture` is one of them plus a
/// few per-architecture facts (biases, QK-norm, fused tensors, storage order), so a new architecture
/// of a known structure is one `Architecture` case here and one file in Sources/WilKE/Model/Architectures.
public enum ModelFamily: String, Sendable, Codable, CaseIterable {
    /// Learned positions, LayerNorm, fused c_attn, GELU MLP.
    case gpt2
    /// Partial interleaved rotary, one LayerNorm per block feeding attention and MLP in parallel.
    case gptj
    /// Rotate-half rotary, RMSNorm, grouped-query attention, SiLU-gated MLP.
    case llama
    /// Llama's attention with RMSNorm on each query and key head, a norm before and after both attention
    /// and MLP, a GELU-gated MLP, embeddings scaled by √d_model, and sliding-window layers with their own
    /// RoPE base between global ones.
    case gemma3
}

/// An architecture as its checkpoint names it: GGUF `general.architecture`, config.json `model_type`.
/// The raw value is that name; `family` is the engine structure that runs it.
public enum Architecture: String, Sendable, Codable, CaseIterable {
    case gpt2, gptj
    /// Llama, Llama 2 and Llama 3 (`rope_type: llama3` changes the rotary frequencies only).
    case llama
    /// Llama with a sliding attention window on every layer (`sliding_window`).
    case mistral
    /// Llama with q/k/v biases and rotate-half ("NEOX") rotary in GGUF as well.
    case qwen2
    /// Llama with an RMSNorm on each query and key head before RoPE (`attn_q_norm` / `attn_k_norm`),
    /// usually a head size other than d_model / heads, no biases; NEOX rotary in GGUF.
    case qwen3
    /// Llama with q, k, v fused in one `qkv_proj` and gate, up in one `gate_up_proj` (GGUF `attn_qkv`
    /// and `ffn_up` hold the same rows); NEOX rotary in GGUF.
    case phi3
    /// Gemma 3 text models (config.json `gemma3_text`; a GGUF says `gemma3`).
    case gemma3

    /// The architecture a source's name denotes; nil when this build does not implement it.
    /// transformers' GPT-J is `gptj`, older exports wrote `gpt-j`; Gemma 3's text-only config.json says
    /// `gemma3_text` (`gemma3` there is the multimodal wrapper, whose GGUF text part is `gemma3`).
    public init?(name: String) {
        let n = name.lowercased()
        self.init(rawValue: ["gpt-j": "gptj", "gemma3_text": "gemma3"][n] ?? n)
    }

    public static var names: [String] { allCases.map(\.rawValue) }

    public var family: ModelFamily {
        switch self {
        case .gpt2: return .gpt2
        case .gptj: return .gptj
        case .llama, .mistral, .qwen2, .qwen3, .phi3: return .llama
        case .gemma3: return .gemma3
        }
    }

    /// config.json `model_type` and `architectures` as transformers writes them for this architecture.
    public var huggingFace: (modelType: String, className: String) {
        switch self {
        case .gpt2: return ("gpt2", "GPT2LMHeadModel")
        case .gptj: return ("gptj", "GPTJForCausalLM")
        case .llama: return ("llama", "LlamaForCausalLM")
        case .mistral: return ("mistral", "MistralForCausalLM")
        case .qwen2: return ("qwen2", "Qwen2ForCausalLM")
        case .qwen3: return ("qwen3", "Qwen3ForCausalLM")
        case .phi3: return ("phi3", "Phi3ForCausalLM")
        case .gemma3: return ("gemma3_text", "Gemma3ForCausalLM")
        }
    }

    /// q/k/v carry biases whatever the config says (Qwen2 has no `attention_bias` key; the biases are
    /// part of the architecture), and the output projection has none.
    public var impliedQKVBias: Bool { self == .qwen2 }

    /// llama.cpp's converter permutes the Q/K rows of this architecture from Hugging Face's rotate-half
    /// pairing to interleaved pairs (its rope type NORM; Mistral's GGUF is a `llama` one). Qwen2, Qwen3,
    /// Phi-3 and Gemma 3 keep HF's order (rope type NEOX).
    public var ggufPermutesQK: Bool { self == .llama }

    /// config.json's `use_sliding_window` decides whether `sliding_window` applies (Qwen2 / Qwen3 state a
    /// window they do not use unless the flag is set).
    public var windowNeedsFlag: Bool { self == .qwen2 || self == .qwen3 }

    /// The MLP activation the engine computes (config.json `activation_function` / `hidden_act`).
    public var activation: String {
        switch family {
        case .gpt2, .gptj: return "gelu_new"
        case .llama: return "silu"
        case .gemma3: return "gelu_pytorch_tanh"
        }
    }

    /// The families whose heads may be wider or narrower than d_model / heads (Gemma 3 270M: 4 × 256 over 640).
    public var freeHeadDim: Bool { family == .llama || family == .gemma3 }
}

extension ModelConfig {
    /// config.json keys, transformers' spellings. One enum for all families: each family reads the
    /// keys of `FamilyKeys`; the rest are shared or family-specific.
    enum CodingKeys: String, CodingKey {
        case modelType = "model_type", vocabSize = "vocab_size", tieWordEmbeddings = "tie_word_embeddings"
        // GPT-2 / GPT-J
        case nLayer = "n_layer", nEmbd = "n_embd", nHead = "n_head", nInner = "n_inner", nPositions = "n_positions"
        case layerNormEpsilon = "layer_norm_epsilon", activationFunction = "activation_function", rotaryDim = "rotary_dim"
        // Llama family
        case numHiddenLayers = "num_hidden_layers", hiddenSize = "hidden_size", numAttentionHeads = "num_attention_heads"
        case numKeyValueHeads = "num_key_value_heads", headDim = "head_dim", intermediateSize = "intermediate_size"
        case maxPositionEmbeddings = "max_position_embeddings", slidingWindow = "sliding_window"
        case rmsNormEps = "rms_norm_eps", hiddenAct = "hidden_act", ropeTheta = "rope_theta"
        case useSlidingWindow = "use_sliding_window", partialRotaryFactor = "partial_rotary_factor"
        // Gemma 3
        case hiddenActivation = "hidden_activation", ropeLocalBaseFreq = "rope_local_base_freq"
        case queryPreAttnScalar = "query_pre_attn_scalar", slidingWindowPattern = "sliding_window_pattern"
        case finalLogitSoftcapping = "final_logit_softcapping"
        case ropeScaling = "rope_scaling", ropeParameters = "rope_parameters"
        case attentionBias = "attention_bias", mlpBias = "mlp_bias"
    }

    /// Where each family keeps the quantities every family has.
    struct FamilyKeys {
        let layers, width, heads, positions, ffn, normEps, activation: CodingKeys

        static func of(_ family: ModelFamily) -> FamilyKeys {
            switch family {
            case .gpt2, .gptj:
                return FamilyKeys(layers: .nLayer, width: .nEmbd, heads: .nHead, positions: .nPositions, ffn: .nInner,
                                  normEps: .layerNormEpsilon, activation: .activationFunction)
            case .llama, .gemma3:
                return FamilyKeys(layers: .numHiddenLayers, width: .hiddenSize, heads: .numAttentionHeads,
                                  positions: .maxPositionEmbeddings, ffn: .intermediateSize, normEps: .rmsNormEps,
                                  activation: family == .gemma3 ? .hiddenActivation : .hiddenAct)
            }
        }
    }

    /// `rope_scaling` (transformers < 5) or `rope_parameters` (≥ 5, which also moved `rope_theta` in).
    struct RopeParameters: Codable, Equatable {
        var ropeTheta: Double?
        var ropeType: String?
        /// The pre-4.45 spelling of `rope_type`.
        var type: String?
        /// `rope_type: llama3`'s band parameters (transformers' `_compute_llama3_parameters`).
        var factor: Double?, lowFreqFactor: Double?, highFreqFactor: Double?, originalMaxPositionEmbeddings: Int?
        /// Phi-3 (transformers ≥ 5): the share of each head that rotates.
        var partialRotaryFactor: Double?

        enum CodingKeys: String, CodingKey {
            case ropeTheta = "rope_theta", ropeType = "rope_type", type, factor
            case lowFreqFactor = "low_freq_factor", highFreqFactor = "high_freq_factor"
            case originalMaxPositionEmbeddings = "original_max_position_embeddings"
            case partialRotaryFactor = "partial_rotary_factor"
        }

        var kind: String { ropeType ?? type ?? "default" }
    }
}
