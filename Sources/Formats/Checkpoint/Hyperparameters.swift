import Foundation

/// The architecture's hyper-parameters, read from GGUF `<arch>.*` keys or from `config.json`.
public struct Hyperparameters: Equatable, Sendable, Codable {
    /// Architecture as named by the source: GGUF `general.architecture` or config.json `model_type`.
    public var architecture: String
    public var layers: Int
    public var dModel: Int
    public var heads: Int
    public var kvHeads: Int
    public var dFF: Int
    public var vocabSize: Int
    public var contextLength: Int
    public var normEps: Double
    /// RoPE base (llama family, GPT-J); nil for learned positions.
    public var ropeTheta: Double?
    /// Rotary dimensions per head (GPT-J's partial rotary; the full head for llama).
    public var rotaryDim: Int?
    public var tiedEmbeddings: Bool
    /// q/k/v projections carry biases (Qwen2).
    public var attentionBias: Bool
    /// The head size when the source states one (GGUF `<arch>.attention.key_length`, config.json
    /// `head_dim`); nil: d_model / heads. Models such as Gemma or Qwen3 have heads · head_dim ≠ d_model.
    public var keyLength: Int?

    public var headDim: Int { keyLength ?? perHead(dModel, heads) }
    /// "gpt2", "gptj" or "llama".
    public var family: String { TensorNames.family(architecture) }

    public static let supportedArchitectures = ["gpt2", "gptj", "llama", "mistral", "qwen2"]

    /// From GGUF metadata: `<arch>.block_count`, `.embedding_length`, ... (llama.cpp key names).
    /// `arrayCount` gives an array's length without decoding it (`GGUFFile.entry(_:)`), used for the
    /// vocabulary size when `<arch>.vocab_size` is absent; when it returns nil, `get` is used.
    public init(gguf get: (String) -> GGUFValue?, arrayCount: (String) -> Int? = { _ in nil },
                hasOutputTensor: Bool) throws {
        guard let arch = get("general.architecture")?.string else {
            throw FormatError.missingHyperparameter("general.architecture")
        }
        guard Hyperparameters.supportedArchitectures.contains(arch) else {
            throw FormatError.unsupportedArchitecture(arch, supported: Hyperparameters.supportedArchitectures)
        }
        func int(_ key: String) throws -> Int {
            guard let v = get("\(arch).\(key)")?.int else { throw FormatError.missingHyperparameter("\(arch).\(key)") }
            return v
        }
        architecture = arch
        layers = try int("block_count")
        dModel = try int("embedding_length")
        heads = try int("attention.head_count")
        kvHeads = (try? int("attention.head_count_kv")) ?? heads
        dFF = (try? int("feed_forward_length")) ?? fourTimes(dModel)
        contextLength = try int("context_length")
        if let v = try? int("vocab_size") {
            vocabSize = v
        } else if let n = arrayCount("tokenizer.ggml.tokens") {
            vocabSize = n
        } else if case let .array(_, tokens)? = get("tokenizer.ggml.tokens") {
            vocabSize = tokens.count
        } else {
            throw FormatError.missingHyperparameter("\(arch).vocab_size")
        }
        normEps = get("\(arch).attention.layer_norm_rms_epsilon")?.float
            ?? get("\(arch).attention.layer_norm_epsilon")?.float ?? 1e-5
        ropeTheta = arch == "gpt2" ? nil : (get("\(arch).rope.freq_base")?.float ?? 10000)
        tiedEmbeddings = !hasOutputTensor
        attentionBias = arch == "qwen2"
        keyLength = try? int("attention.key_length")
        rotaryDim = arch == "gpt2" ? nil : ((try? int("rope.dimension_count")) ?? headDim)
        try validate()
    }

    /// From a Hugging Face `config.json`.
    public init(configJSON data: Data, path: String) throws {
        guard let obj = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw FormatError.invalidConfig(path: path, reason: "not a JSON object")
        }
        guard let type = obj["model_type"] as? String else {
            throw FormatError.invalidConfig(path: path, reason: "model_type is missing")
        }
        let arch = type == "gpt-j" ? "gptj" : type
        guard Hyperparameters.supportedArchitectures.contains(arch) else {
            throw FormatError.unsupportedArchitecture(type, supported: Hyperparameters.supportedArchitectures)
        }
        func int(_ keys: String...) throws -> Int {
            for k in keys { if let v = obj[k] as? Int { return v } }
            throw FormatError.invalidConfig(path: path, reason: "\(keys[0]) is missing")
        }
        func double(_ key: String, _ fallback: Double) -> Double { (obj[key] as? NSNumber)?.doubleValue ?? fallback }
        architecture = arch
        vocabSize = try int("vocab_size")
        switch TensorNames.family(arch) {
        case "gpt2", "gptj":
            layers = try int("n_layer", "num_hidden_layers")
            dModel = try int("n_embd", "hidden_size")
            heads = try int("n_head", "num_attention_heads")
            kvHeads = heads
            dFF = (obj["n_inner"] as? Int) ?? fourTimes(dModel)
            contextLength = try int("n_positions", "max_position_embeddings")
            normEps = double("layer_norm_epsilon", 1e-5)
            ropeTheta = arch == "gptj" ? 10000 : nil
            rotaryDim = arch == "gptj" ? ((obj["rotary_dim"] as? Int) ?? perHead(dModel, heads)) : nil
            tiedEmbeddings = arch == "gpt2" ? ((obj["tie_word_embeddings"] as? Bool) ?? true) : false
            attentionBias = false
        default:
            layers = try int("num_hidden_layers")
            dModel = try int("hidden_size")
            heads = try int("num_attention_heads")
            kvHeads = (obj["num_key_value_heads"] as? Int) ?? heads
            dFF = try int("intermediate_size")
            contextLength = try int("max_position_embeddings")
            normEps = double("rms_norm_eps", 1e-6)
            ropeTheta = double("rope_theta", (obj["rope_parameters"] as? [String: Any]).flatMap { ($0["rope_theta"] as? NSNumber)?.doubleValue } ?? 10000)
            keyLength = obj["head_dim"] as? Int
            rotaryDim = (obj["head_dim"] as? Int) ?? perHead(dModel, heads)
            tiedEmbeddings = (obj["tie_word_embeddings"] as? Bool) ?? false
            attentionBias = arch == "qwen2" || ((obj["attention_bias"] as? Bool) ?? false)
        }
        try validate()
    }

    func validate() throws {
        for (name, v) in [("layers", layers), ("d_model", dModel), ("heads", heads), ("kv_heads", kvHeads),
                          ("d_ff", dFF), ("vocab_size", vocabSize)] where v <= 0 {
            throw FormatError.missingHyperparameter("\(name) must be positive, got \(v)")
        }
        guard (keyLength ?? 1) > 0, keyLength != nil || dModel % heads == 0, heads % kvHeads == 0 else {
            throw FormatError.missingHyperparameter("heads (\(heads)) must divide d_model (\(dModel)) and be a multiple of kv_heads (\(kvHeads))")
        }
    }
}

/// d_model / heads for the defaults computed before `validate` runs: a file can say heads = 0 (or −1
/// with d_model = Int.min), which must become validate's error, not a division trap (found by the
/// `apply` fuzz target).
func perHead(_ d: Int, _ h: Int) -> Int { h > 0 ? d / h : 0 }

/// The d_ff default 4 · d_model, 0 (rejected by `validate`) where a file's d_model makes it overflow.
private func fourTimes(_ d: Int) -> Int {
    let (v, overflow) = d.multipliedReportingOverflow(by: 4)
    return overflow ? 0 : v
}
