/// The block structures the engine implements. Every supported `Architecture` is one of them plus a
/// few per-architecture facts (biases, storage order), so a new architecture of a known structure is
/// one `Architecture` case.
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
    case gpt2, gptj, llama
    /// Llama with a sliding attention window (`sliding_window` bounds the positions, `ModelConfig`).
    case mistral
    /// Llama with q/k/v biases and rotate-half ("NEOX") rotary in GGUF as well.
    case qwen2
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
        case .llama, .mistral, .qwen2: return .llama
        case .gemma3: return .gemma3
        }
    }

    /// q/k/v carry biases whatever the config says (Qwen2 has no `attention_bias` key; the biases are
    /// part of the architecture), and the output projection has none.
    public var impliedQKVBias: Bool { self == .qwen2 }

    /// llama.cpp's converter permutes the Q/K rows of this architecture from Hugging Face's rotate-half
    /// pairing to interleaved pairs (its rope type NORM). Qwen2 and the others keep HF's order.
    public var ggufPermutesQK: Bool { self == .llama }

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

        enum CodingKeys: String, CodingKey { case ropeTheta = "rope_theta", ropeType = "rope_type", type }

        var kind: String { ropeType ?? type ?? "default" }
    }
}
