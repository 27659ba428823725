import Formats

/// One block's parameters: matrices as `Weight` (stored form, nn.Linear layout [out, in]), vectors f32. Optional members depend on the family:
/// GPT-2 has every bias; GPT-J has no attention biases and no second norm; llama has no norm biases,
/// a gate projection and (Qwen2) q/k/v biases.
final class LayerWeights: @unchecked Sendable {
    /// [C] (+ [C] bias for LayerNorm families)
    let attnNorm: FloatBuffer, attnNormBias: FloatBuffer?
    /// Gemma 3 only: [D] RMSNorm of each query and key head; [C] norms after attention and after the MLP.
    /// A GGUF stores every Gemma norm as 1 + w (llama.cpp's converter folds in Gemma3RMSNorm's 1 + w), so
    /// they are plain RMSNorm weights here.
    let qNorm: FloatBuffer?, kNorm: FloatBuffer?, postAttnNorm: FloatBuffer?, postFFNNorm: FloatBuffer?
    /// [H·D, C], [G·D, C], [G·D, C] and their biases
    let wq: Weight, wk: Weight, wv: Weight
    let bq: FloatBuffer?, bk: FloatBuffer?, bv: FloatBuffer?
    /// [C, H·D] (+ [C])
    let wo: Weight, bo: FloatBuffer?
    /// [C] (+ [C]); nil for GPT-J's parallel block
    let ffnNorm: FloatBuffer?, ffnNormBias: FloatBuffer?
    /// [F, C] llama and Gemma 3
    let wGate: Weight?
    /// [F, C] (+ [F])
    let wUp: Weight, bUp: FloatBuffer?
    /// [C, F] (+ [C]): the matrix ROME edits. `var` so an edit can swap it.
    var wDown: Weight
    let bDown: FloatBuffer?

    init(_ l: Int, _ cfg: ModelConfig, _ src: TensorLoader) throws {
        let (c, f, qd, kvd) = (cfg.dModel, cfg.dFF, cfg.qDim, cfg.kvDim)
        let b = "blk.\(l)."
        let lnFamily = !cfg.usesRMSNorm
        attnNorm = try src.load(b + "attn_norm.weight", [c])
        attnNormBias = lnFamily ? try src.load(b + "attn_norm.bias", [c]) : nil
        if cfg.family == .gpt2 {
            // GPT-2 fuses q, k, v into c_attn: rows [0, C) are q, [C, 2C) k, [2C, 3C) v.
            let w = try src.matrix(b + "attn_qkv.weight", [3 * c, c]), bias = try src.load(b + "attn_qkv.bias", [3 * c])
            func part(_ buf: FloatBuffer, _ i: Int, _ size: Int) -> FloatBuffer {
                let out = FloatBuffer(count: size)
                out.p.update(from: buf.p + i * size, count: size)
                return out
            }
            (wq, wk, wv) = (w.rows(0..<c), w.rows(c..<(2 * c)), w.rows((2 * c)..<(3 * c)))
            (bq, bk, bv) = (part(bias, 0, c), part(bias, 1, c), part(bias, 2, c))
        } else {
            wq = try src.matrix(b + "attn_q.weight", [qd, c])
            wk = try src.matrix(b + "attn_k.weight", [kvd, c])
            wv = try src.matrix(b + "attn_v.weight", [kvd, c])
            if cfg.attentionBias {
                (bq, bk, bv) = (try src.load(b + "attn_q.bias", [qd]), try src.load(b + "attn_k.bias", [kvd]),
                                try src.load(b + "attn_v.bias", [kvd]))
            } else {
                (bq, bk, bv) = (nil, nil, nil)
            }
        }
        let gemma = cfg.family == .gemma3
        qNorm = gemma ? try src.load(b + "attn_q_norm.weight", [cfg.headDim]) : nil
        kNorm = gemma ? try src.load(b + "attn_k_norm.weight", [cfg.headDim]) : nil
        postAttnNorm = gemma ? try src.load(b + "post_attention_norm.weight", [c]) : nil
        postFFNNorm = gemma ? try src.load(b + "post_ffw_norm.weight", [c]) : nil
        wo = try src.matrix(b + "attn_output.weight", [c, qd])
        bo = cfg.attentionOutBias ? try src.load(b + "attn_output.bias", [c]) : nil
        ffnNorm = cfg.parallelBlock ? nil : try src.load(b + "ffn_norm.weight", [c])
        ffnNormBias = cfg.family == .gpt2 ? try src.load(b + "ffn_norm.bias", [c]) : nil
        wGate = cfg.usesRMSNorm ? try src.matrix(b + "ffn_gate.weight", [f, c]) : nil
        wUp = try src.matrix(b + "ffn_up.weight", [f, c])
        bUp = lnFamily ? try src.load(b + "ffn_up.bias", [f]) : nil
        wDown = try src.matrix(b + "ffn_down.weight", [c, f])
        bDown = lnFamily ? try src.load(b + "ffn_down.bias", [c]) : nil
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

    init(_ cfg: ModelConfig, _ source: WeightSource) throws {
        let src = TensorLoader(source: source)
        let (c, v) = (cfg.dModel, cfg.vocabSize)
        tokenEmbd = try src.matrix("token_embd.weight", [v, c])
        positionEmbd = cfg.family == .gpt2 ? try src.load("position_embd.weight", [cfg.maxPositions, c]) : nil
        layers = try (0..<cfg.nLayer).map { try LayerWeights($0, cfg, src) }
        outputNorm = try src.load("output_norm.weight", [c])
        outputNormBias = !cfg.usesRMSNorm ? try src.load("output_norm.bias", [c]) : nil
        if source.has("output.weight") {
            output = try src.matrix("output.weight", [v, c])
        } else if cfg.tiedHead {
            output = tokenEmbd
        } else {
            throw WilKEError.missingTensor("output.weight")
        }
        outputBias = cfg.family == .gptj && !cfg.tiedHead ? try src.load("output.bias", [v]) : nil
        // f32 copies for the whole model or for none of it (see `F32Cache`).
        var matrices = [tokenEmbd] + (output === tokenEmbd ? [] : [output])
        for b in layers { matrices += [b.wq, b.wk, b.wv, b.wo, b.wUp, b.wDown] + (b.wGate.map { [$0] } ?? []) }
        let total = matrices.reduce(0) { $0 + ($1.directF32 == nil ? $1.rows * $1.cols * 4 : 0) }
        if total <= F32Cache.budget { for m in matrices { m.cacheable = true } }
    }
}
