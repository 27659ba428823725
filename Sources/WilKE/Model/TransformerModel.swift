import Formats

/// The MLP output projections of a model at one moment (`TransformerModel.mlpOutputSnapshot`).
public struct MLPOutputSnapshot: @unchecked Sendable {
    let weights: [Weight]
}

/// The CPU transformer: GPT-2, GPT-J, the llama family (Llama 2 / 3, Mistral, Qwen2, Qwen3, Phi-3) and
/// Gemma 3 decoders in f32 over OpenBLAS, each described by its `ArchitectureEngine` (Architectures/).
/// Rows are packed into one [T, C] matrix per matmul; attention runs per row and head.
public final class TransformerModel: @unchecked Sendable {
    public let config: ModelConfig
    let weights: ModelWeights
    /// How this architecture's blocks run (`Architecture.engine`).
    let engine: any ArchitectureEngine

    /// Loads and shape-checks every tensor the config needs; a missing or mis-shaped tensor throws
    /// `WilKEError.missingTensor` / `.tensorShape` naming it. A config the engine would compute wrongly
    /// (another activation, scaled rope, MLP biases) throws its `FormatError` first.
    public init(config: ModelConfig, weights: WeightSource) throws {
        try config.validate()
        try config.checkEngineSupport()
        self.config = config
        self.engine = config.engine
        self.weights = try ModelWeights(config, weights)
    }

    /// ROME's edited matrix at `layer`: the MLP output projection, [C, F] row-major (W in `m = W k + b`).
    public func mlpOutputWeight(layer: Int) -> [Float] { weights.layers[layer].wDown.materialize().array }

    /// ‖W‖_F of `layer`'s MLP output projection, read panel by panel from its stored form, plus its
    /// low-rank term's share from small products (no f32 copy).
    public func mlpOutputNorm(layer: Int) -> Double { weights.layers[layer].wDown.sumOfSquares().squareRoot() }

    /// Replaces the MLP output projection of `layer` ([C, F] row-major), e.g. to apply or revert an edit.
    public func setMLPOutputWeight(layer: Int, _ values: [Float]) throws {
        let n = config.dModel * config.dFF
        guard values.count == n else { throw WilKEError.vectorSize(expected: n, found: values.count) }
        weights.layers[layer].wDown = Weight(FloatBuffer(values), rows: config.dModel, cols: config.dFF)
    }

    /// Replaces the MLP output projection of `layer` with `w` ([C, F] logical), e.g. a patch result's bytes.
    func setMLPOutputWeight(layer: Int, _ w: Weight) throws {
        guard w.rows == config.dModel && w.cols == config.dFF else {
            throw WilKEError.tensorShape(name: "blk.\(layer).ffn_down.weight", expected: [config.dModel, config.dFF], found: [w.rows, w.cols])
        }
        weights.layers[layer].wDown = w
    }

    /// Adds Σ_t left_t ⊗ right_t to `layer`'s MLP output projection as a low-rank term over its stored
    /// matrix (an edit in memory: no dense copy, `Weight.adding`).
    /// - left: [k, C] (component-major); right: [k, F]
    func addMLPOutputTerm(layer: Int, left: [Float], right: [Float], rank k: Int) throws {
        let (c, f) = (config.dModel, config.dFF)
        guard layer >= 0 && layer < config.nLayer else { throw WilKEError.invalidLayer(layer) }
        guard left.count == k * c else { throw WilKEError.vectorSize(expected: k * c, found: left.count) }
        guard right.count == k * f else { throw WilKEError.vectorSize(expected: k * f, found: right.count) }
        weights.layers[layer].wDown = weights.layers[layer].wDown.adding(left: left, right: right, rank: k)
    }

    /// Every layer's MLP output projection as it is now: references to the weights (stored view plus
    /// term), no copy. `restore` puts them back, bit for bit, after trial edits.
    public func mlpOutputSnapshot() -> MLPOutputSnapshot { MLPOutputSnapshot(weights: weights.layers.map(\.wDown)) }

    /// Puts back the MLP output projections of `snapshot` (taken from this model).
    public func restore(_ snapshot: MLPOutputSnapshot) throws {
        guard snapshot.weights.count == weights.layers.count else {
            throw WilKEError.invalidRequest("the snapshot has \(snapshot.weights.count) layers, the model \(weights.layers.count)")
        }
        for (l, w) in snapshot.weights.enumerated() { try setMLPOutputWeight(layer: l, w) }
    }

    /// Runs the batch; see `ForwardBatch` for what is computed and recorded.
    public func forward(_ batch: ForwardBatch) throws -> ForwardResult {
        try forwardTraced(batch, keepActivations: false).result
    }

    /// `forward` that can also keep every layer's activations for a backward pass; `final` is the [T, C]
    /// residual entering the final norm. `recycle` (activations of an earlier pass over the same number of
    /// tokens) is overwritten instead of allocating fresh buffers: every buffer is fully rewritten.
    /// - keepInputs: keep a copy of every computed block's input instead of its activations (the lean
    ///   tape: `backward` recomputes one block at a time from it).
    func forwardTraced(_ batch: ForwardBatch, keepActivations: Bool, recycle: [LayerActivations] = [], keepInputs: Bool = false)
        throws -> (result: ForwardResult, trace: [LayerActivations], final: FloatBuffer, inputs: [FloatBuffer]) {
        let cfg = config, c = cfg.dModel
        let pack = try Packing(batch, cfg)
        let startLayer = batch.resume?.layer ?? 0
        var result = ForwardResult()
        var trace: [LayerActivations] = [], inputs: [FloatBuffer] = []

        // Where each intervention / tap lands in the packed matrix.
        let tapIdx = try batch.taps.map(pack.index)
        for l in batch.tapLayers where l < startLayer || l >= cfg.nLayer { throw WilKEError.invalidLayer(l) }
        let mlpDelta = try packedMLPDelta(batch, pack)
        let residDelta = try batch.residualDelta.map { d -> (Int, [Float], [Int]) in
            guard d.layer >= startLayer - 1 && d.layer < cfg.nLayer else { throw WilKEError.invalidLayer(d.layer) }
            guard d.vector.count == c else { throw WilKEError.vectorSize(expected: c, found: d.vector.count) }
            return (d.layer, d.vector, try d.at.map(pack.index))
        }
        if let l = batch.cacheResidualAt, l < startLayer || l > cfg.nLayer { throw WilKEError.invalidLayer(l) }
        let logitIdx = try batch.logitsAt.map(pack.index)

        // KV histories per row: the cached prefix, extended layer by layer with the new positions.
        var kv: [KVCache] = (0..<pack.rows).map { r in
            (batch.prefixes.isEmpty ? nil : batch.prefixes[r]) ?? KVCache(nLayer: cfg.nLayer, kvDim: cfg.kvDim)
        }

        var x = FloatBuffer(count: pack.total * c)
        if let resume = batch.resume {
            x = FloatBuffer(resume.values)
        } else {
            Encoder.forward(out: x.p, tokens: batch.sequences.flatMap { $0 }, positions: pack.positions,
                            wte: weights.tokenEmbd, wpe: weights.positionEmbd?.p, c: c)
            if engine.traits.scaledEmbeddings {
                // Gemma3TextScaledWordEmbedding: the table is shared with the head, so the scale is applied here.
                let scale = Float(c).squareRoot()
                for i in 0..<(pack.total * c) { x.p[i] *= scale }
            }
        }
        func addDelta(_ d: (Int, [Float], [Int])?, after layer: Int, to buf: FloatBuffer) {
            guard let (l, vec, idx) = d, l == layer else { return }
            for t in idx { for j in 0..<c { buf.p[t * c + j] += vec[j] } }
        }
        addDelta(residDelta, after: startLayer - 1, to: x)

        // Without a tape only two layers' buffers are ever live (the block reading x and the one that wrote
        // it), so they alternate instead of allocating and zeroing ~40 floats per token per layer anew.
        var alternate: [LayerActivations] = []
        for l in startLayer..<cfg.nLayer {
            if batch.cacheResidualAt == l { result.residual = pack.residual(layer: l, x, width: c) }
            if keepInputs { inputs.append(FloatBuffer(copying: x)) }
            let act: LayerActivations
            if l - startLayer < recycle.count, recycle[l - startLayer].mlp.count == pack.total * c {
                act = recycle[l - startLayer]
                act.x = x
            } else if !keepActivations || keepInputs, alternate.count == 2 {
                act = alternate[(l - startLayer) % 2]
                act.x = x
            } else {
                let scratch = keepActivations && !keepInputs && LayerActivations.sharesScratch(cfg) ? trace.first : nil
                act = LayerActivations(cfg, tokens: pack.total, input: x, scratch: scratch)
                if !keepActivations || keepInputs { alternate.append(act) }
            }
            try block(l, act, pack, &kv, keepAttention: keepActivations && !keepInputs,
                      mlpDelta: mlpDelta.flatMap { $0.0 == l ? ($0.1, $0.2) : nil })
            if batch.tapLayers.contains(l) {
                result.keys[l] = tapIdx.map { act.key.row($0, width: cfg.dFF) }
                result.mlpOut[l] = tapIdx.map { act.mlp.row($0, width: c) }
            }
            addDelta(residDelta, after: l, to: act.out)
            x = act.out
            if keepActivations && !keepInputs { trace.append(act) }
        }
        if batch.cacheResidualAt == cfg.nLayer { result.residual = pack.residual(layer: cfg.nLayer, x, width: c) }
        if batch.returnKV {
            guard batch.resume == nil else { throw WilKEError.invalidBatch("returnKV cannot be combined with resume") }
            result.kv = kv
        }
        result.logits = head(x, rows: logitIdx)
        return (result, trace, x, inputs)
    }

    /// The batch's MLP-output δ with its positions as packed rows (layer, [C], rows).
    func packedMLPDelta(_ batch: ForwardBatch, _ pack: Packing) throws -> (Int, [Float], [Int])? {
        try batch.mlpDelta.map { d -> (Int, [Float], [Int]) in
            guard d.layer >= (batch.resume?.layer ?? 0) && d.layer < config.nLayer else { throw WilKEError.invalidLayer(d.layer) }
            guard d.vector.count == config.dModel else { throw WilKEError.vectorSize(expected: config.dModel, found: d.vector.count) }
            return (d.layer, d.vector, try d.at.map(pack.index))
        }
    }

    /// Final norm and LM head on the requested packed rows only (the head is the largest matmul).
    /// - x: [T, C]; returns one [V] row per index
    func head(_ x: FloatBuffer, rows: [Int]) -> [[Float]] {
        let (c, v, n) = (config.dModel, config.vocabSize, rows.count)
        guard n > 0 else { return [] }
        let g = FloatBuffer(count: n * c), normed = FloatBuffer(count: n * c)
        for (i, t) in rows.enumerated() { (g.p + i * c).update(from: x.p + t * c, count: c) }
        let mean = FloatBuffer(count: n), rstd = FloatBuffer(count: n)
        if config.usesRMSNorm {
            RMSNorm.forward(out: normed.p, rstd: rstd.p, inp: g.p, weight: weights.outputNorm.p, n: n, c: c,
                            eps: config.normEpsF32)
        } else {
            LayerNorm.forward(out: normed.p, mean: mean.p, rstd: rstd.p, inp: g.p, weight: weights.outputNorm.p,
                              bias: weights.outputNormBias?.p, n: n, c: c, eps: config.normEpsF32)
        }
        let logits = FloatBuffer(count: n * v)
        weights.output.forward(out: logits.p, inp: normed.p, bias: weights.outputBias?.p, n: n)
        return (0..<n).map { logits.row($0, width: v) }
    }
}

/// Row bookkeeping of a packed batch: row r's new tokens occupy packed rows offsets[r] ..< offsets[r] + lengths[r]
/// and absolute positions starts[r] ..< starts[r] + lengths[r].
struct Packing {
    let rows: Int, total: Int
    let starts: [Int], lengths: [Int], offsets: [Int]
    /// [T] absolute position of each packed token
    let positions: [Int]

    init(_ b: ForwardBatch, _ cfg: ModelConfig) throws {
        rows = b.sequences.count
        guard b.prefixes.isEmpty || b.prefixes.count == rows else {
            throw WilKEError.invalidBatch("\(b.prefixes.count) prefixes for \(rows) rows")
        }
        let starts = (0..<rows).map { b.prefixes.isEmpty ? 0 : b.prefixes[$0]?.count ?? 0 }
        let lengths = b.sequences.map(\.count)
        var o = 0
        offsets = lengths.map { n in defer { o += n }; return o }
        total = o
        positions = (0..<rows).flatMap { r in (0..<lengths[r]).map { starts[r] + $0 } }
        self.starts = starts; self.lengths = lengths
        for s in b.sequences { for t in s where t < 0 || t >= cfg.vocabSize {
            throw WilKEError.tokenOutOfRange(token: t, vocabSize: cfg.vocabSize)
        } }
        if cfg.engine.traits.learnedPositions { // nothing exists past the table
            for r in 0..<rows where starts[r] + lengths[r] > cfg.maxPositions {
                throw WilKEError.sequenceTooLong(length: starts[r] + lengths[r], maxPositions: cfg.maxPositions)
            }
        }
        if let res = b.resume {
            guard res.starts == starts && res.lengths == lengths && res.width == cfg.dModel else {
                throw WilKEError.invalidBatch("the resumed residual does not match the rows and their prefixes")
            }
        }
    }

    /// Packed row index of an absolute (row, pos); throws for positions not computed in this batch.
    func index(_ p: TokenPosition) throws -> Int {
        guard p.row >= 0 && p.row < rows && p.pos >= starts[p.row] && p.pos < starts[p.row] + lengths[p.row] else {
            throw WilKEError.invalidPosition(row: p.row, pos: p.pos)
        }
        return offsets[p.row] + p.pos - starts[p.row]
    }

    func residual(layer: Int, _ x: FloatBuffer, width: Int) -> ResidualCache {
        ResidualCache(layer: layer, starts: starts, lengths: lengths, values: x.array, width: width)
    }
}

extension ModelConfig {
    /// The norm epsilon in the engine's precision (the config keeps the file's value).
    var normEpsF32: Float { Float(normEps) }
    /// The RoPE base in the engine's precision; only rotary families read it.
    var ropeBase: Float { Float(ropeTheta ?? 10000) }
    /// RMSNorm (llama, Gemma 3) rather than LayerNorm with biases (GPT-2, GPT-J); those families also gate the MLP.
    var usesRMSNorm: Bool { engine.traits.norm == .rmsNorm }
}
