import Foundation

/// The hyper-parameters of a decoder-only transformer, read once from GGUF `<arch>.*` metadata
/// (`init(gguf:)`) or a Hugging Face config.json (`Codable`, `init(configJSON:path:)`), and used by
/// every module: Formats for names and layouts, Patch for compatibility checks, WilKE to build the
/// engine. Construction validates the shapes (`validate`); what the engine cannot compute yet (another
/// activation, scaled rope, MLP biases) is recorded, not refused, so header tools and patches still work
/// on such a model, and `checkEngineSupport` refuses it where a forward pass would be wrong.
public struct ModelConfig: Sendable, Equatable {
    public var architecture: Architecture
    public var nLayer: Int
    /// Residual width `d` (C in the layer legends).
    public var dModel: Int
    public var nHead: Int
    /// Key/value heads (GQA); equals `nHead` for GPT-2 and GPT-J.
    public var nKVHead: Int
    /// The head size: GGUF `attention.key_length` or config.json `head_dim` when the file states one
    /// (Gemma, Qwen3 and Mistral-Nemo have nHead · headDim ≠ dModel), otherwise dModel / nHead.
    public var headDim: Int
    /// MLP inner width `d_ff` (= the key size `d_k` of ROME).
    public var dFF: Int
    public var vocabSize: Int
    /// The learned position table (GPT-2) or trained context length (rotary models), as the file states it.
    public var contextLength: Int
    /// Mistral's and Phi-3's attention window (every layer), Gemma 3's (its sliding layers); nil for full
    /// attention. Query position p attends to keys p − window + 1 ... p.
    public var slidingWindow: Int?
    /// Gemma 3: layer i attends globally when (i + 1) % pattern == 0 and within `slidingWindow`
    /// otherwise (config.json `sliding_window_pattern`; llama.cpp fixes it at 6 for gemma3).
    public var slidingWindowPattern: Int?
    /// Gemma 3: the RoPE base of the sliding layers (`rope_local_base_freq`; `ropeTheta` is the global one).
    public var ropeLocalTheta: Double?
    /// Gemma 3: queries are scaled by queryPreAttnScalar^-1/2 rather than headDim^-1/2.
    public var queryPreAttnScalar: Double?
    /// LayerNorm (GPT-2 / GPT-J) or RMSNorm (llama) epsilon.
    public var normEps: Double
    /// RoPE base; nil for learned positions (GPT-2).
    public var ropeTheta: Double?
    /// Rotated dims per head: GPT-J's `rotary_dim`; `headDim` for llama; 0 for GPT-2.
    public var rotaryDim: Int
    /// The LM head reuses `token_embd.weight` (no `output.weight`; config.json `tie_word_embeddings`).
    public var tiedHead: Bool
    /// q/k/v projections carry biases (Qwen2, llama `attention_bias`).
    public var attentionBias: Bool
    /// The MLP activation the file names (`activation_function`, `hidden_act`).
    public var activation: String
    /// The rope variant (`rope_scaling` / `rope_parameters` `rope_type`); "default" is plain RoPE.
    public var ropeType: String
    /// `rope_type: llama3`'s frequency bands (config.json); a GGUF carries them as the `rope_freqs.weight`
    /// tensor instead (llama.cpp's converter computes the per-frequency divisors), so nil there.
    public var ropeScaling: Llama3RopeScaling?
    /// The MLP projections carry biases (llama `mlp_bias`).
    public var mlpBias: Bool

    /// Every field explicit; `validate()` is the caller's (tests, synthetic checkpoints).
    public init(architecture: Architecture, nLayer: Int, dModel: Int, nHead: Int, nKVHead: Int, headDim: Int, dFF: Int,
                vocabSize: Int, contextLength: Int, slidingWindow: Int? = nil, normEps: Double, ropeTheta: Double?,
                rotaryDim: Int, tiedHead: Bool, attentionBias: Bool = false, activation: String? = nil,
                ropeType: String = "default", mlpBias: Bool = false, slidingWindowPattern: Int? = nil,
                ropeLocalTheta: Double? = nil, queryPreAttnScalar: Double? = nil, ropeScaling: Llama3RopeScaling? = nil) {
        self.architecture = architecture; self.nLayer = nLayer; self.dModel = dModel; self.nHead = nHead
        self.nKVHead = nKVHead; self.headDim = headDim; self.dFF = dFF; self.vocabSize = vocabSize
        self.contextLength = contextLength; self.slidingWindow = slidingWindow; self.normEps = normEps
        self.ropeTheta = ropeTheta; self.rotaryDim = rotaryDim; self.tiedHead = tiedHead
        self.attentionBias = attentionBias; self.activation = activation ?? architecture.activation
        self.ropeType = ropeType; self.mlpBias = mlpBias
        self.slidingWindowPattern = slidingWindowPattern; self.ropeLocalTheta = ropeLocalTheta
        self.queryPreAttnScalar = queryPreAttnScalar; self.ropeScaling = ropeScaling
    }

    public var family: ModelFamily { architecture.family }
    /// The longest sequence the engine runs: the context (GPT-2's position table). A sliding window
    /// does not bound it: the engine masks keys outside the window (Mistral, Phi-3: every layer; Gemma 3:
    /// its sliding layers), in cached decoding too.
    public var maxPositions: Int { contextLength }

    /// Gemma 3: whether layer `l` attends only within `slidingWindow` (with the local RoPE base).
    public func isSlidingLayer(_ l: Int) -> Bool {
        guard family == .gemma3, slidingWindow != nil, let p = slidingWindowPattern, p > 0 else { return false }
        return (l + 1) % p != 0
    }
    /// The attention output projection carries a bias: always for GPT-2's c_proj; with llama's
    /// `attention_bias` (o_proj too); never for Qwen2's implied q/k/v biases or GPT-J's out_proj.
    public var attentionOutBias: Bool { family == .gpt2 || (attentionBias && !architecture.impliedQKVBias) }
    /// Width of the concatenated query heads (`nHead * headDim`).
    public var qDim: Int { nHead * headDim }
    /// Width of the concatenated key (or value) heads (`nKVHead * headDim`).
    public var kvDim: Int { nKVHead * headDim }

    /// The shapes are positive and tile: both readers call it, so a file cannot reach a division or an
    /// allocation with sizes that make no model.
    public func validate() throws {
        for (name, v) in [("layers", nLayer), ("d_model", dModel), ("heads", nHead), ("kv_heads", nKVHead),
                          ("head_dim", headDim), ("d_ff", dFF), ("vocab_size", vocabSize),
                          ("context_length", contextLength), ("sliding_window", slidingWindow ?? 1),
                          ("sliding_window_pattern", slidingWindowPattern ?? 1)] where v <= 0 {
            throw FormatError.nonPositiveHyperparameter(name, value: v)
        }
        guard nHead % nKVHead == 0 else { throw FormatError.kvHeadsDoNotDivide(heads: nHead, kvHeads: nKVHead) }
        // Only the llama family implements heads wider or narrower than d_model / heads; the product is
        // overflow-checked because both factors come from the file.
        let (width, overflow) = nHead.multipliedReportingOverflow(by: headDim)
        if overflow || (!architecture.freeHeadDim && width != dModel) {
            throw FormatError.headsDoNotTile(heads: nHead, headDim: headDim, dModel: dModel)
        }
        if family != .gpt2, rotaryDim <= 0 || rotaryDim % 2 != 0 || rotaryDim > headDim {
            throw FormatError.invalidRotaryDim(rotaryDim, headDim: headDim)
        }
    }

    /// Throws what the engine does not implement: the forward pass would run but compute another model.
    public func checkEngineSupport() throws {
        guard activation == architecture.activation else {
            throw FormatError.unsupportedActivation(activation, supported: architecture.activation)
        }
        guard ropeType == "default" || (ropeType == "llama3" && ropeScaling != nil) else {
            throw FormatError.unsupportedRopeType(ropeType)
        }
        guard !mlpBias else { throw FormatError.unsupportedMLPBias }
    }

    /// The head size a reader derives when the file states none: heads must tile d_model then.
    static func headDim(stated: Int?, dModel: Int, nHead: Int) throws -> Int {
        if let stated { return stated }
        let d = perHead(dModel, nHead)
        if nHead > 0, dModel % nHead != 0 { throw FormatError.headsDoNotTile(heads: nHead, headDim: d, dModel: dModel) }
        return d
    }
}

/// Llama 3's RoPE scaling (transformers `_compute_llama3_parameters`, llama.cpp's `rope_freqs`): with
/// wavelength λ_i = 2π / inv_freq_i and L = `originalContextLength`, frequencies with λ < L / high are
/// kept, those with λ > L / low divided by `factor`, and the band between interpolated. Only the
/// frequencies change, so forward and backward share them (`divisors`).
public struct Llama3RopeScaling: Sendable, Equatable, Codable {
    public var factor: Double, lowFreqFactor: Double, highFreqFactor: Double, originalContextLength: Int

    public init(factor: Double, lowFreqFactor: Double, highFreqFactor: Double, originalContextLength: Int) {
        self.factor = factor; self.lowFreqFactor = lowFreqFactor; self.highFreqFactor = highFreqFactor
        self.originalContextLength = originalContextLength
    }

    /// What frequency i of a `rotaryDim`-dim rotation with base `theta` is divided by (llama.cpp's
    /// `rope_freqs.weight` values): 1, `factor`, or 1 / ((1 − s) / factor + s) in the band, where
    /// s = (L / λ − low) / (high − low).
    public func divisors(theta: Double, rotaryDim: Int) -> [Float] {
        let l = Double(originalContextLength)
        return (0..<(rotaryDim / 2)).map { i in
            let wavelength = 2 * Double.pi * pow(theta, Double(2 * i) / Double(rotaryDim))
            if wavelength < l / highFreqFactor { return 1 }
            if wavelength > l / lowFreqFactor { return Float(factor) }
            let s = (l / wavelength - lowFreqFactor) / (highFreqFactor - lowFreqFactor)
            return Float(1 / ((1 - s) / factor + s))
        }
    }
}

/// d_model / heads for the defaults computed before `validate` runs: a file can say heads = 0 (or −1
/// with d_model = Int.min), which must become validate's error, not a division trap (found by the
/// `apply` fuzz target).
func perHead(_ d: Int, _ h: Int) -> Int { h > 0 ? d / h : 0 }

/// The d_ff default 4 · d_model, 0 (rejected by `validate`) where a file's d_model makes it overflow.
func fourTimes(_ d: Int) -> Int {
    let (v, overflow) = d.multipliedReportingOverflow(by: 4)
    return overflow ? 0 : v
}
