import Foundation

// The two readers of `ModelConfig`: GGUF metadata (llama.cpp's `<arch>.*` keys) and config.json
// (`Codable` over `CodingKeys`, Architecture.swift). Both end in `validate()`.

extension ModelConfig {
    /// From GGUF metadata: `<arch>.block_count`, `.embedding_length`, ... (llama.cpp key names).
    /// `arrayCount` gives an array's length without decoding it (`GGUFFile.entry(_:)`), used for the
    /// vocabulary size when `<arch>.vocab_size` is absent; when it returns nil, `get` is used.
    public init(gguf get: (String) -> GGUFValue?, arrayCount: (String) -> Int? = { _ in nil },
                hasOutputTensor: Bool) throws {
        guard let name = get("general.architecture")?.string else {
            throw FormatError.missingHyperparameter("general.architecture")
        }
        guard let arch = Architecture(rawValue: name) else {
            throw FormatError.unsupportedArchitecture(name, supported: Architecture.names)
        }
        func int(_ key: String) -> Int? { get("\(name).\(key)")?.int }
        func required(_ key: String) throws -> Int {
            guard let v = int(key) else { throw FormatError.missingHyperparameter("\(name).\(key)") }
            return v
        }
        let dModel = try required("embedding_length"), nHead = try required("attention.head_count")
        let headDim = try ModelConfig.headDim(stated: int("attention.key_length"), dModel: dModel, nHead: nHead)
        let vocab: Int
        if let v = int("vocab_size") {
            vocab = v
        } else if let n = arrayCount("tokenizer.ggml.tokens") {
            vocab = n
        } else if case let .array(_, tokens)? = get("tokenizer.ggml.tokens") {
            vocab = tokens.count
        } else {
            throw FormatError.missingHyperparameter("\(name).vocab_size")
        }
        let rotary: Int
        switch arch.family {
        case .gpt2: rotary = 0
        case .gptj, .llama: rotary = int("rope.dimension_count") ?? headDim
        case .gemma3: rotary = headDim
        }
        self.init(architecture: arch, nLayer: try required("block_count"), dModel: dModel, nHead: nHead,
                  nKVHead: int("attention.head_count_kv") ?? nHead, headDim: headDim,
                  dFF: int("feed_forward_length") ?? fourTimes(dModel), vocabSize: vocab,
                  contextLength: try required("context_length"),
                  normEps: get("\(name).attention.layer_norm_rms_epsilon")?.float
                      ?? get("\(name).attention.layer_norm_epsilon")?.float ?? 1e-5,
                  ropeTheta: arch.family == .gpt2 ? nil : (get("\(name).rope.freq_base")?.float ?? 10000),
                  rotaryDim: rotary, tiedHead: !hasOutputTensor, attentionBias: arch.impliedQKVBias)
        // llama.cpp's phi3 graph masks to `attention.sliding_window`; its llama, qwen2 and qwen3 ones
        // attend fully whatever the file states.
        if arch == .phi3 { slidingWindow = int("attention.sliding_window") }
        if arch.family == .gemma3 {
            // A gemma3 GGUF states the window but not the pattern, the local base or the query scale:
            // llama.cpp's loader fixes them (pattern 6, base 10000, 1/√head_dim; 1/√(d_model/heads) for
            // the 62-layer 27B), the values transformers' Gemma3TextConfig defaults to.
            slidingWindow = int("attention.sliding_window")
            slidingWindowPattern = 6
            ropeLocalTheta = get("\(name).rope.freq_base_swa")?.float ?? 10000
            queryPreAttnScalar = Double(nLayer == 62 ? perHead(dModel, nHead) : headDim)
        }
        try validate()
    }

    /// From a Hugging Face `config.json` at `path` (named in errors about the file as a whole).
    public init(configJSON data: Data, path: String) throws {
        do {
            self = try JSONDecoder().decode(ModelConfig.self, from: data)
        } catch let e as FormatError {
            throw e
        } catch {
            throw FormatError.invalidConfigJSON(path: path)
        }
    }
}

extension ModelConfig: Codable {
    /// config.json as transformers writes it: each family's own key names (GPT-2's `n_embd`, llama's
    /// `hidden_size`), the defaults transformers applies when a key is absent. GPT-2-style configs may
    /// also spell the shared quantities the llama way (transformers' `attribute_map`).
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func value<T: Decodable>(_ key: CodingKeys, _ expected: String) throws -> T? {
            do { return try c.decodeIfPresent(T.self, forKey: key) } catch {
                throw FormatError.invalidHyperparameter(key.stringValue, expected: expected)
            }
        }
        func int(_ key: CodingKeys) throws -> Int? { try value(key, "an integer") }
        func double(_ key: CodingKeys) throws -> Double? { try value(key, "a number") }
        func bool(_ key: CodingKeys) throws -> Bool? { try value(key, "true or false") }
        func string(_ key: CodingKeys) throws -> String? { try value(key, "a string") }
        func required(_ key: CodingKeys) throws -> Int {
            if let v = try int(key) { return v }
            if let alias = key.llamaSpelling, let v = try int(alias) { return v }
            throw FormatError.missingHyperparameter(key.stringValue)
        }

        guard let type = try string(.modelType) else { throw FormatError.missingHyperparameter(CodingKeys.modelType.stringValue) }
        guard let arch = Architecture(name: type) else {
            throw FormatError.unsupportedArchitecture(type, supported: Architecture.names)
        }
        let keys = FamilyKeys.of(arch.family)
        let dModel = try required(keys.width), nHead = try required(keys.heads)
        self.init(architecture: arch, nLayer: try required(keys.layers), dModel: dModel, nHead: nHead, nKVHead: nHead,
                  headDim: 0, dFF: 0, vocabSize: try required(.vocabSize), contextLength: try required(keys.positions),
                  normEps: 0, ropeTheta: nil, rotaryDim: 0, tiedHead: false,
                  activation: try string(keys.activation))
        switch arch.family {
        case .gpt2, .gptj:
            headDim = try ModelConfig.headDim(stated: nil, dModel: dModel, nHead: nHead)
            dFF = try int(.nInner) ?? fourTimes(dModel)
            normEps = try double(.layerNormEpsilon) ?? 1e-5
            if arch.family == .gptj {
                rotaryDim = try int(.rotaryDim) ?? headDim
                ropeTheta = try double(.ropeTheta) ?? 10000
            }
            tiedHead = try bool(.tieWordEmbeddings) ?? (arch.family == .gpt2)
        case .llama, .gemma3:
            headDim = try ModelConfig.headDim(stated: int(.headDim), dModel: dModel, nHead: nHead)
            rotaryDim = headDim
            dFF = try required(.intermediateSize)
            nKVHead = try int(.numKeyValueHeads) ?? nHead
            slidingWindow = try int(.slidingWindow)
            if arch.windowNeedsFlag {
                // Qwen applies its window only above max_window_layers when the flag is set: not computed.
                if try bool(.useSlidingWindow) == true {
                    throw FormatError.invalidHyperparameter(CodingKeys.useSlidingWindow.stringValue, expected: "false")
                }
                slidingWindow = nil
            }
            normEps = try double(.rmsNormEps) ?? 1e-6
            // transformers ≥ 5 nests the base in rope_parameters; older configs keep rope_theta / rope_scaling.
            var theta = try double(.ropeTheta) ?? 10000
            for key in [CodingKeys.ropeParameters, .ropeScaling] {
                guard let rope: RopeParameters = try value(key, "an object") else { continue }
                if let t = rope.ropeTheta { theta = t }
                if rope.kind != "default", ropeType == "default" { ropeType = rope.kind }
                if rope.kind == "llama3" { ropeScaling = Self.llama3Scaling(rope) }
                if let f = rope.partialRotaryFactor { rotaryDim = Int(Double(headDim) * f) }
            }
            ropeTheta = theta
            // Phi-3 before transformers 5 states the rotating share at the top level.
            if let f = try double(.partialRotaryFactor) { rotaryDim = Int(Double(headDim) * f) }
            tiedHead = try bool(.tieWordEmbeddings) ?? false
            attentionBias = try arch.impliedQKVBias || (bool(.attentionBias) ?? false)
            mlpBias = try bool(.mlpBias) ?? false
            if arch.family == .gemma3 { try decodeGemma3(c) }
        }
        try validate()
    }

    /// The keys `init(from:)` reads back to an equal value: a config.json transformers can load
    /// (the converter adds `architectures`, dtype and token ids).
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        for (key, v) in configFields {
            switch v {
            case let .int(x): try c.encode(x, forKey: key)
            case let .double(x): try c.encode(x, forKey: key)
            case let .bool(x): try c.encode(x, forKey: key)
            case let .string(x): try c.encode(x, forKey: key)
            case let .rope(type, theta, s):
                try c.encode(RopeParameters(ropeTheta: theta, ropeType: type, factor: s?.factor, lowFreqFactor: s?.lowFreqFactor,
                                            highFreqFactor: s?.highFreqFactor,
                                            originalMaxPositionEmbeddings: s?.originalContextLength), forKey: key)
            }
        }
    }

    /// One config.json value of `configFields`.
    public enum ConfigValue: Equatable, Sendable {
        case int(Int), double(Double), bool(Bool), string(String)
        /// `rope_parameters`: a non-default rope type, the base and Llama 3's bands.
        case rope(type: String, theta: Double, scaling: Llama3RopeScaling?)
    }

    /// What `encode(to:)` writes, in key order: also the hyper-parameter object `wilke inspect --json`
    /// prints, so the report and the Codable form cannot drift.
    public var fields: [(key: String, value: ConfigValue)] { configFields.map { ($0.0.stringValue, $0.1) } }

    var configFields: [(CodingKeys, ConfigValue)] {
        let keys = FamilyKeys.of(family)
        var f: [(CodingKeys, ConfigValue)] = [
            (.modelType, .string(architecture.huggingFace.modelType)), (keys.layers, .int(nLayer)), (keys.width, .int(dModel)),
            (keys.heads, .int(nHead)), (keys.ffn, .int(dFF)), (.vocabSize, .int(vocabSize)),
            (keys.positions, .int(contextLength)), (keys.normEps, .double(normEps)), (keys.activation, .string(activation)),
            (.tieWordEmbeddings, .bool(tiedHead)),
        ]
        switch family {
        case .gpt2: break
        case .gptj: f += [(.rotaryDim, .int(rotaryDim)), (.ropeTheta, .double(ropeTheta ?? 10000))]
        case .llama, .gemma3:
            f += [(.numKeyValueHeads, .int(nKVHead)), (.headDim, .int(headDim)), (.ropeTheta, .double(ropeTheta ?? 10000)),
                  (.attentionBias, .bool(attentionBias)), (.mlpBias, .bool(mlpBias))]
            if let w = slidingWindow { f.append((.slidingWindow, .int(w))) }
            if ropeType != "default" {
                f.append((.ropeParameters, .rope(type: ropeType, theta: ropeTheta ?? 10000, scaling: ropeScaling)))
            }
            if rotaryDim != headDim {
                f.append((.partialRotaryFactor, .double(Double(rotaryDim) / Double(headDim))))
            }
            if family == .gemma3 {
                if let p = slidingWindowPattern { f.append((.slidingWindowPattern, .int(p))) }
                if let t = ropeLocalTheta { f.append((.ropeLocalBaseFreq, .double(t))) }
                if let s = queryPreAttnScalar { f.append((.queryPreAttnScalar, .double(s))) }
            }
        }
        return f.sorted { $0.0.stringValue < $1.0.stringValue }
    }
}

extension ModelConfig.CodingKeys {
    /// The llama-style name a GPT-2-style config may use for the same quantity.
    var llamaSpelling: Self? {
        switch self {
        case .nLayer: return .numHiddenLayers
        case .nEmbd: return .hiddenSize
        case .nHead: return .numAttentionHeads
        case .nPositions: return .maxPositionEmbeddings
        default: return nil
        }
    }
}

extension ModelConfig {
    /// `rope_type: llama3`'s bands when all four parameters are stated (transformers needs each), else nil:
    /// the config is recorded and `checkEngineSupport` refuses the rope type, as for any unknown one.
    static func llama3Scaling(_ rope: RopeParameters) -> Llama3RopeScaling? {
        guard let factor = rope.factor, let low = rope.lowFreqFactor, let high = rope.highFreqFactor,
              let context = rope.originalMaxPositionEmbeddings, high > low else { return nil }
        return Llama3RopeScaling(factor: factor, lowFreqFactor: low, highFreqFactor: high, originalContextLength: context)
    }

    /// transformers ≥ 5 writes Gemma 3's two bases as `rope_parameters.{full,sliding}_attention.rope_theta`.
    struct Gemma3RopeParameters: Codable {
        var fullAttention: RopeParameters?
        var slidingAttention: RopeParameters?

        enum CodingKeys: String, CodingKey { case fullAttention = "full_attention", slidingAttention = "sliding_attention" }
    }

    /// The Gemma 3 keys of a config.json, with Gemma3TextConfig's defaults (pattern 6, local base 10000,
    /// query scalar 256). A final-logit softcap is not computed, so a config with one is refused by name.
    mutating func decodeGemma3(_ c: KeyedDecodingContainer<CodingKeys>) throws {
        func value<T: Decodable>(_ key: CodingKeys, _ expected: String) throws -> T? {
            do { return try c.decodeIfPresent(T.self, forKey: key) } catch {
                throw FormatError.invalidHyperparameter(key.stringValue, expected: expected)
            }
        }
        slidingWindowPattern = try value(.slidingWindowPattern, "an integer") ?? 6
        ropeLocalTheta = try value(.ropeLocalBaseFreq, "a number") ?? 10000
        queryPreAttnScalar = try value(.queryPreAttnScalar, "a number") ?? 256
        if let _: Double = try value(.finalLogitSoftcapping, "null") {
            throw FormatError.invalidHyperparameter(CodingKeys.finalLogitSoftcapping.stringValue, expected: "null")
        }
        if let rope: Gemma3RopeParameters = try value(.ropeParameters, "an object") {
            if let full = rope.fullAttention {
                if let t = full.ropeTheta { ropeTheta = t }
                ropeType = full.kind
            }
            if let t = rope.slidingAttention?.ropeTheta { ropeLocalTheta = t }
        }
    }
}
