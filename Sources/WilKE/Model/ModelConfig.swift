import Foundation

/// The model families the engine implements. Qwen2 is `llama` with q/k/v biases; SmolLM2 is `llama`;
/// Mistral is `llama` (its sliding window bounds the positions).
public enum Architecture: String, Sendable {
    case gpt2, gptj, llama
}

/// Hyperparameters of a decoder-only transformer, in one vocabulary across families.
public struct ModelConfig: Sendable, Equatable {
    public var arch: Architecture
    public var nLayer: Int
    /// Residual width `d` (C in the layer legends).
    public var dModel: Int
    public var nHead: Int
    /// Key/value heads (GQA); equals `nHead` for GPT-2 and GPT-J.
    public var nKVHead: Int
    public var headDim: Int
    /// MLP inner width `d_ff` (= the key size `d_k` of ROME).
    public var dFF: Int
    public var vocabSize: Int
    /// Learned position table size (GPT-2) or the trained context length (rotary models).
    public var maxPositions: Int
    /// LayerNorm (GPT-2 / GPT-J) or RMSNorm (llama) epsilon.
    public var normEps: Float
    /// RoPE base (GPT-J and llama).
    public var ropeTheta: Float
    /// Rotated dims per head: GPT-J's `rotary_dim`; `headDim` for llama; 0 for GPT-2.
    public var rotaryDim: Int
    /// The LM head reuses `token_embd.weight` when `output.weight` is absent.
    public var tiedHead: Bool
    /// q/k/v projections carry biases (Qwen2, llama `attention_bias`).
    public var attentionBias: Bool
    /// The attention output projection carries a bias (llama `attention_bias`; always on for GPT-2).
    public var attentionOutBias: Bool

    public init(arch: Architecture, nLayer: Int, dModel: Int, nHead: Int, nKVHead: Int, headDim: Int, dFF: Int,
                vocabSize: Int, maxPositions: Int, normEps: Float, ropeTheta: Float = 10000, rotaryDim: Int = 0,
                tiedHead: Bool, attentionBias: Bool = false, attentionOutBias: Bool = false) {
        self.arch = arch; self.nLayer = nLayer; self.dModel = dModel; self.nHead = nHead; self.nKVHead = nKVHead
        self.headDim = headDim; self.dFF = dFF; self.vocabSize = vocabSize; self.maxPositions = maxPositions
        self.normEps = normEps; self.ropeTheta = ropeTheta; self.rotaryDim = rotaryDim; self.tiedHead = tiedHead
        self.attentionBias = attentionBias; self.attentionOutBias = attentionOutBias
    }

    /// Width of the concatenated query heads (`nHead * headDim`).
    public var qDim: Int { nHead * headDim }
    /// Width of the concatenated key (or value) heads (`nKVHead * headDim`).
    public var kvDim: Int { nKVHead * headDim }
    /// GPT-J adds attention and MLP of the same normed input (one LayerNorm per block).
    public var parallelBlock: Bool { arch == .gptj }

    /// Reads a Hugging Face `config.json` (model_type gpt2, gptj, llama, mistral or qwen2).
    public init(hfConfigJSON data: Data) throws {
        guard let any = try? JSONSerialization.jsonObject(with: data), let j = any as? [String: Any] else {
            throw WilKEError.invalidConfig("config.json is not a JSON object")
        }
        func int(_ key: String) throws -> Int {
            guard let v = j[key] as? NSNumber else { throw WilKEError.invalidConfig("\(key) is missing or not a number") }
            return v.intValue
        }
        func optInt(_ key: String) -> Int? { (j[key] as? NSNumber)?.intValue }
        func float(_ key: String, _ fallback: Float) -> Float { (j[key] as? NSNumber)?.floatValue ?? fallback }
        func bool(_ key: String, _ fallback: Bool) -> Bool { (j[key] as? NSNumber)?.boolValue ?? fallback }
        let type = (j["model_type"] as? String) ?? ""
        switch type {
        case "gpt2":
            let d = try int("n_embd"), h = try int("n_head")
            if let act = j["activation_function"] as? String, act != "gelu_new" {
                throw WilKEError.invalidConfig("activation_function \(act) is not supported (gelu_new only)")
            }
            self.init(arch: .gpt2, nLayer: try int("n_layer"), dModel: d, nHead: h, nKVHead: h, headDim: d / max(h, 1),
                      dFF: optInt("n_inner") ?? 4 * d, vocabSize: try int("vocab_size"),
                      maxPositions: try int("n_positions"), normEps: float("layer_norm_epsilon", 1e-5),
                      tiedHead: bool("tie_word_embeddings", true), attentionOutBias: true)
        case "gptj":
            let d = try int("n_embd"), h = try int("n_head")
            if let act = j["activation_function"] as? String, act != "gelu_new" {
                throw WilKEError.invalidConfig("activation_function \(act) is not supported (gelu_new only)")
            }
            self.init(arch: .gptj, nLayer: try int("n_layer"), dModel: d, nHead: h, nKVHead: h, headDim: d / max(h, 1),
                      dFF: optInt("n_inner") ?? 4 * d, vocabSize: try int("vocab_size"),
                      maxPositions: try int("n_positions"), normEps: float("layer_norm_epsilon", 1e-5),
                      ropeTheta: 10000, rotaryDim: optInt("rotary_dim") ?? d / max(h, 1),
                      tiedHead: bool("tie_word_embeddings", false))
        case "llama", "qwen2", "mistral":
            let d = try int("hidden_size"), h = try int("num_attention_heads")
            if let act = j["hidden_act"] as? String, act != "silu" {
                throw WilKEError.invalidConfig("hidden_act \(act) is not supported (silu only)")
            }
            if bool("mlp_bias", false) { throw WilKEError.invalidConfig("mlp_bias is not supported") }
            // transformers ≥ 5 nests the base in rope_parameters; older configs keep rope_theta / rope_scaling.
            var theta = float("rope_theta", 10000)
            for key in ["rope_parameters", "rope_scaling"] {
                guard let rp = j[key] as? [String: Any] else { continue }
                if let t = rp["rope_theta"] as? NSNumber { theta = t.floatValue }
                let kind = (rp["rope_type"] as? String) ?? (rp["type"] as? String) ?? "default"
                if kind != "default" { throw WilKEError.invalidConfig("rope type \(kind) is not supported") }
            }
            let headDim = optInt("head_dim") ?? d / max(h, 1)
            let qwen = type == "qwen2"
            let llamaBias = bool("attention_bias", false)
            self.init(arch: .llama, nLayer: try int("num_hidden_layers"), dModel: d, nHead: h,
                      nKVHead: optInt("num_key_value_heads") ?? h, headDim: headDim,
                      dFF: try int("intermediate_size"), vocabSize: try int("vocab_size"),
                      // Mistral is llama with a sliding attention window; full attention is the same
                      // computation while a sequence fits in the window, so longer ones are refused.
                      maxPositions: min(optInt("max_position_embeddings") ?? 2048, optInt("sliding_window") ?? .max),
                      normEps: float("rms_norm_eps", 1e-6), ropeTheta: theta, rotaryDim: headDim,
                      tiedHead: bool("tie_word_embeddings", false), attentionBias: qwen || llamaBias,
                      attentionOutBias: !qwen && llamaBias)
        default:
            throw WilKEError.unsupportedArchitecture(type.isEmpty ? "(no model_type)" : type)
        }
        try validate()
    }

    /// Checks the sizes are positive and the heads tile the widths; throws `invalidConfig`.
    public func validate() throws {
        for (name, v) in [("nLayer", nLayer), ("dModel", dModel), ("nHead", nHead), ("nKVHead", nKVHead),
                          ("headDim", headDim), ("dFF", dFF), ("vocabSize", vocabSize), ("maxPositions", maxPositions)]
        where v <= 0 {
            throw WilKEError.invalidConfig("\(name) must be positive, got \(v)")
        }
        if nHead % nKVHead != 0 { throw WilKEError.invalidConfig("\(nHead) heads are not a multiple of \(nKVHead) kv heads") }
        if arch != .llama && nHead * headDim != dModel {
            throw WilKEError.invalidConfig("\(nHead) heads of \(headDim) do not tile width \(dModel)")
        }
        if arch != .gpt2 && (rotaryDim % 2 != 0 || rotaryDim > headDim || rotaryDim <= 0) {
            throw WilKEError.invalidConfig("rotary dim \(rotaryDim) must be even and at most the head dim \(headDim)")
        }
    }
}
