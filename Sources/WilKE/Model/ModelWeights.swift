import Formats

/// One block's parameters: matrices as `Weight` (stored form, nn.Linear layout [out, in]), vectors f32.
/// Which members exist is the architecture's (Architectures/<Name>.swift loads them): GPT-2 has every
/// bias; GPT-J no attention biases and no second norm; the llama family no norm biases, a gate
/// projection and (Qwen2) q/k/v biases; Qwen3 and Gemma 3 per-head q/k norms.
final class LayerWeights: @unchecked Sendable {
    /// [C] (+ [C] bias for LayerNorm families)
    let attnNorm: FloatBuffer, attnNormBias: FloatBuffer?
    /// [D] RMSNorm of each query and key head (Qwen3, Gemma 3). Gemma 3 only: [C] norms after attention
    /// and after the MLP. A GGUF stores every Gemma norm as 1 + w (llama.cpp's converter folds in
    /// Gemma3RMSNorm's 1 + w), so they are plain RMSNorm weights here.
    let qNorm: FloatBuffer?, kNorm: FloatBuffer?, postAttnNorm: FloatBuffer?, postFFNNorm: FloatBuffer?
    /// [H·D, C], [G·D, C], [G·D, C] and their biases
    let wq: Weight, wk: Weight, wv: Weight
    let bq: FloatBuffer?, bk: FloatBuffer?, bv: FloatBuffer?
    /// [C, H·D] (+ [C])
    let wo: Weight, bo: FloatBuffer?
    /// [C] (+ [C]); nil for GPT-J's parallel block
    let ffnNorm: FloatBuffer?, ffnNormBias: FloatBuffer?
    /// [F, C] gated MLPs (llama family, Gemma 3)
    let wGate: Weight?
    /// [F, C] (+ [F])
    let wUp: Weight, bUp: FloatBuffer?
    /// [C, F] (+ [C]): the matrix ROME edits. `var` so an edit can swap it.
    var wDown: Weight
    let bDown: FloatBuffer?

    init(attnNorm: FloatBuffer, attnNormBias: FloatBuffer? = nil, attention a: AttentionWeights,
         qNorm: FloatBuffer? = nil, kNorm: FloatBuffer? = nil, postAttnNorm: FloatBuffer? = nil,
         ffnNorm: FloatBuffer?, ffnNormBias: FloatBuffer? = nil, postFFNNorm: FloatBuffer? = nil, mlp: MLPWeights) {
        self.attnNorm = attnNorm; self.attnNormBias = attnNormBias
        (wq, wk, wv, bq, bk, bv, wo, bo) = (a.wq, a.wk, a.wv, a.bq, a.bk, a.bv, a.wo, a.bo)
        self.qNorm = qNorm; self.kNorm = kNorm; self.postAttnNorm = postAttnNorm; self.postFFNNorm = postFFNNorm
        self.ffnNorm = ffnNorm; self.ffnNormBias = ffnNormBias
        (wGate, wUp, bUp, wDown, bDown) = (mlp.wGate, mlp.wUp, mlp.bUp, mlp.wDown, mlp.bDown)
    }
}

/// A block's attention projections, however the file stores them (separate or fused).
struct AttentionWeights {
    /// [H·D, C], [G·D, C], [G·D, C]; [C, H·D]
    var wq: Weight, wk: Weight, wv: Weight, wo: Weight
    var bq: FloatBuffer? = nil, bk: FloatBuffer? = nil, bv: FloatBuffer? = nil, bo: FloatBuffer? = nil
}

/// A block's MLP projections. - wGate, wUp: [F, C]; wDown: [C, F]
struct MLPWeights {
    var wGate: Weight?
    var wUp: Weight
    var wDown: Weight
    var bUp: FloatBuffer? = nil, bDown: FloatBuffer? = nil
}

/// The tensor layouts several architectures share, under canonical names (`blk.N.` + stem).
extension TensorLoader {
    /// `attn_q`, `attn_k`, `attn_v`, `attn_output`, with q/k/v biases when the config says so and an
    /// output bias when `cfg.attentionOutBias`.
    func separateAttention(_ l: Int, _ cfg: ModelConfig) throws -> AttentionWeights {
        let b = "blk.\(l).", (c, qd, kvd) = (cfg.dModel, cfg.qDim, cfg.kvDim)
        var a = AttentionWeights(wq: try matrix(b + "attn_q.weight", [qd, c]), wk: try matrix(b + "attn_k.weight", [kvd, c]),
                                 wv: try matrix(b + "attn_v.weight", [kvd, c]), wo: try matrix(b + "attn_output.weight", [c, qd]))
        if cfg.attentionBias {
            (a.bq, a.bk, a.bv) = (try load(b + "attn_q.bias", [qd]), try load(b + "attn_k.bias", [kvd]),
                                  try load(b + "attn_v.bias", [kvd]))
        }
        if cfg.attentionOutBias { a.bo = try load(b + "attn_output.bias", [c]) }
        return a
    }

    /// `ffn_gate`, `ffn_up`, `ffn_down` without biases (the gated MLP of the llama family and Gemma 3).
    func gatedMLP(_ l: Int, _ cfg: ModelConfig) throws -> MLPWeights {
        let b = "blk.\(l).", (c, f) = (cfg.dModel, cfg.dFF)
        return MLPWeights(wGate: try matrix(b + "ffn_gate.weight", [f, c]), wUp: try matrix(b + "ffn_up.weight", [f, c]),
                          wDown: try matrix(b + "ffn_down.weight", [c, f]))
    }

    /// The [C] RMSNorm weight `blk.l.<stem>.weight`.
    func norm(_ l: Int, _ stem: String, _ cfg: ModelConfig) throws -> FloatBuffer {
        try load("blk.\(l).\(stem).weight", [cfg.dModel])
    }

    /// A copy of `buf[i·size ..< (i + 1)·size]`: one part of a fused bias.
    func part(_ buf: FloatBuffer, _ i: Int, _ size: Int) -> FloatBuffer {
        let out = FloatBuffer(count: size)
        out.p.update(from: buf.p + i * size, count: size)
        return out
    }
}

/// A `WeightSource` that can hand out matrices in their stored form (a checkpoint, a patched one).
protocol StoredWeightSource: WeightSource {
    /// `name` as a `Weight` view, or nil to fall back to the f32 values of `tensor(_:)`.
    func weight(_ name: String) throws -> Weight?
}

/// Fetches tensors from a `WeightSource` and checks their shapes, naming the tensor on failure.
struct TensorLoader {
    let source: WeightSource

    /// A matrix of logical shape `shape` ([out, in]): a view of the stored bytes when the source has
    /// them, else an f32 copy of the source's values.
    func matrix(_ name: String, _ shape: [Int]) throws -> Weight {
        guard source.has(name) else { throw WilKEError.missingTensor(name) }
        if let stored = source as? StoredWeightSource, let w = try stored.weight(name) {
            guard [w.rows, w.cols] == shape else {
                throw WilKEError.tensorShape(name: name, expected: shape, found: [w.rows, w.cols])
            }
            return w
        }
        return Weight(try load(name, shape), rows: shape[0], cols: shape[1])
    }

    func load(_ name: String, _ shape: [Int]) throws -> FloatBuffer {
        guard source.has(name) else { throw WilKEError.missingTensor(name) }
        let t = try source.tensor(name)
        // A [C] vector may arrive as [1, C] from some writers; compare without leading 1s.
        let trimmed = Array(t.shape.drop { $0 == 1 && t.shape.count > shape.count })
        guard trimmed == shape else { throw WilKEError.tensorShape(name: name, expected: shape, found: t.shape) }
        let n = shape.reduce(1, *)
        guard t.values.count == n else { throw WilKEError.tensorSize(name: name, expected: n, found: t.values.count) }
        return FloatBuffer(t.values)
    }
}

/// All parameters of a model.
final class ModelWeights: @unchecked Sendable {
    /// [V, C]
    let tokenEmbd: Weight
    /// [maxPositions, C], GPT-2 only
    let positionEmbd: FloatBuffer?
    let layers: [LayerWeights]
    /// [C] (+ [C])
    let outputNorm: FloatBuffer, outputNormBias: FloatBuffer?
    /// [V, C]: `output.weight`, or `tokenEmbd` when the head is tied
    let output: Weight
    /// [V], GPT-J's lm_head bias
    let outputBias: FloatBuffer?
    /// [R/2] what each rotary frequency is divided by (Llama 3's scaling), shared by forward and backward:
    /// a GGUF's `rope_freqs.weight` (llama.cpp's converter computed it), else from config.json's bands.
    let ropeDivisors: [Float]?

    init(_ cfg: ModelConfig, _ source: WeightSource) throws {
        let src = TensorLoader(source: source)
        let (c, v) = (cfg.dModel, cfg.vocabSize)
        tokenEmbd = try src.matrix("token_embd.weight", [v, c])
        let engine = cfg.engine, traits = engine.traits
        positionEmbd = traits.learnedPositions ? try src.load("position_embd.weight", [cfg.maxPositions, c]) : nil
        layers = try (0..<cfg.nLayer).map { try engine.layerWeights($0, cfg, src) }
        outputNorm = try src.load("output_norm.weight", [c])
        outputNormBias = traits.norm == .layerNorm ? try src.load("output_norm.bias", [c]) : nil
        ropeDivisors = try Self.ropeDivisors(cfg, source)
        if source.has("output.weight") {
            output = try src.matrix("output.weight", [v, c])
        } else if cfg.tiedHead {
            output = tokenEmbd
        } else {
            throw WilKEError.missingTensor("output.weight")
        }
        outputBias = traits.headBias && !cfg.tiedHead ? try src.load("output.bias", [v]) : nil
        // f32 copies for the whole model or for none of it (see `F32Cache`).
        var matrices = [tokenEmbd] + (output === tokenEmbd ? [] : [output])
        for b in layers { matrices += [b.wq, b.wk, b.wv, b.wo, b.wUp, b.wDown] + (b.wGate.map { [$0] } ?? []) }
        let total = matrices.reduce(0) { $0 + ($1.directF32 == nil ? $1.rows * $1.cols * 4 : 0) }
        if total <= F32Cache.budget { for m in matrices { m.cacheable = true } }
    }
}

extension ModelWeights {
    static func ropeDivisors(_ cfg: ModelConfig, _ source: WeightSource) throws -> [Float]? {
        let half = cfg.rotaryDim / 2
        if source.has("rope_freqs.weight") {
            return try TensorLoader(source: source).load("rope_freqs.weight", [half]).array
        }
        return cfg.ropeScaling?.divisors(theta: cfg.ropeTheta ?? 10000, rotaryDim: cfg.rotaryDim)
    }
}
