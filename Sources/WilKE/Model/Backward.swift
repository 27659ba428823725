import Formats

// The activation-only backward pass (weights frozen): from dLoss/dLogits at the `logitsAt` positions
// down through the LM head, the final norm and every computed block, to the residual stream after a
// chosen block. An additive δ on layer l's MLP output (ROME) or on the residual after block l (MEMIT)
// enters the residual after block l unchanged, so dLoss/dδ is that gradient summed over δ's positions.

/// A forward pass kept for `TransformerModel.backward`: the activations of every block it computed.
/// Cached prefixes and the layers below a resume point are constants of the backward pass.
public final class ForwardTape: @unchecked Sendable {
    let batch: ForwardBatch
    let pack: Packing
    /// Every computed block's activations, or empty for a lean tape (`inputs` instead).
    let trace: [LayerActivations]
    /// [T, C] per computed block, its input: what a lean tape keeps (`backward` recomputes the block).
    let inputs: [FloatBuffer]
    /// [T, C] residual entering the final norm
    let final: FloatBuffer
    /// packed row of each `logitsAt` entry
    let logitRows: [Int]
    /// first computed block
    let startLayer: Int

    init(batch: ForwardBatch, pack: Packing, trace: [LayerActivations], inputs: [FloatBuffer], final: FloatBuffer,
         logitRows: [Int], startLayer: Int) {
        self.batch = batch; self.pack = pack; self.trace = trace; self.inputs = inputs; self.final = final
        self.logitRows = logitRows; self.startLayer = startLayer
    }

    /// [T, C] the input of computed block `l`.
    func blockInput(_ l: Int) -> FloatBuffer {
        let i = l - startLayer
        return trace.indices.contains(i) ? trace[i].x : inputs[i]
    }
}

extension TransformerModel {
    /// `forward` that also keeps what `backward` needs: every computed block's activations (about
    /// 9·C + 3·F + 2·G·D floats per token per layer) and attention probabilities (H·n·(P + n) per row).
    /// Passing the previous step's tape as `reusing` overwrites its buffers instead of allocating new ones
    /// (an optimisation step re-runs the same batch shape; that tape must no longer be used).
    /// - lean: keep only each block's input ([T, C]) and recompute the block's activations during
    ///   `backward`, one block at a time: about one more forward pass of time for a tape ~(9 + 3F/C)x
    ///   smaller. nil: lean when the full tape would exceed `fullTapeLimit` bytes.
    public func forwardForBackward(_ batch: ForwardBatch, reusing previous: ForwardTape? = nil, lean: Bool? = nil)
        throws -> (result: ForwardResult, tape: ForwardTape) {
        guard engine.hasBackward else { throw WilKEError.backwardUnsupported(family: config.family.rawValue) }
        let pack = try Packing(batch, config)
        let startLayer = batch.resume?.layer ?? 0
        let lean = lean ?? (fullTapeBytes(tokens: pack.total, layers: config.nLayer - startLayer) > Self.fullTapeLimit)
        let recycle = lean ? [] : previous.map { $0.startLayer == startLayer ? $0.trace : [] } ?? []
        let (result, trace, final, inputs) = try forwardTraced(batch, keepActivations: true, recycle: recycle, keepInputs: lean)
        let tape = ForwardTape(batch: batch, pack: pack, trace: trace, inputs: inputs, final: final,
                               logitRows: try batch.logitsAt.map(pack.index), startLayer: startLayer)
        return (result, tape)
    }

    /// Above this many bytes of activations a tape is lean. 1 GiB: an edit may take the file + 1.5 GiB
    /// (issue #11), and with its layer's factor loaded only for the solve, the rest of the δ optimization
    /// (the δ = 0 pass's caches, kernel scratch) stays under 0.4 GiB on the 8B shape, whose ROME step
    /// batch's tape is ~0.75 GiB: it runs full, without recomputing every block in the backward.
    static let fullTapeLimit = 1 << 30

    /// Bytes of a full tape over `layers` blocks of `tokens` packed tokens (attention probabilities aside;
    /// see `LayerActivations.sharesScratch` for what a block keeps).
    func fullTapeBytes(tokens: Int, layers: Int) -> Int {
        let (c, f) = (config.dModel, config.dFF)
        let perToken = LayerActivations.sharesScratch(config)
            ? 2 * c + config.qDim + 2 * config.kvDim + (config.usesRMSNorm ? 2 : 1) * f
            : 9 * c + 3 * f + config.qDim + 2 * config.kvDim
        return 4 * perToken * tokens * max(0, layers)
    }

    /// Block `l`'s activations on the tape: kept, or recomputed from its kept input (lean tape).
    func activations(_ l: Int, _ tape: ForwardTape) throws -> LayerActivations {
        let i = l - tape.startLayer
        if tape.trace.indices.contains(i) { return tape.trace[i] }
        let act = LayerActivations(config, tokens: tape.pack.total, input: tape.inputs[i])
        var kv: [KVCache] = (0..<tape.pack.rows).map { r in
            (tape.batch.prefixes.isEmpty ? nil : tape.batch.prefixes[r]) ?? KVCache(nLayer: config.nLayer, kvDim: config.kvDim)
        }
        let delta = try packedMLPDelta(tape.batch, tape.pack)
        try block(l, act, tape.pack, &kv, keepAttention: true, mlpDelta: delta.flatMap { $0.0 == l ? ($0.1, $0.2) : nil })
        return act
    }

    /// Gradients of the loss w.r.t. the residual stream after block `l`, for each `l` in `afterLayers`, at
    /// each of `at` (absolute positions, as in `ForwardBatch`).
    /// - dLogits: one [V] row per `logitsAt` entry of the taped batch, in order
    /// - afterLayers: each in `startLayer − 1 ..< nLayer`, where `startLayer` is the resumed layer (0 without
    ///   resume; −1 is the embedding output). With δ on layer l's MLP output or residual, use `l`.
    /// - Returns: per requested layer, one [C] gradient per entry of `at`, in order.
    public func backward(_ tape: ForwardTape, dLogits: [[Float]], afterLayers: [Int],
                         at: [TokenPosition]) throws -> [Int: [[Float]]] {
        let cfg = config, c = cfg.dModel, pack = tape.pack
        guard dLogits.count == tape.logitRows.count else {
            throw WilKEError.invalidBatch("\(dLogits.count) logit gradients for \(tape.logitRows.count) logits positions")
        }
        for row in dLogits where row.count != cfg.vocabSize {
            throw WilKEError.vectorSize(expected: cfg.vocabSize, found: row.count)
        }
        for l in afterLayers where l < tape.startLayer - 1 || l >= cfg.nLayer { throw WilKEError.invalidLayer(l) }
        let idx = try at.map(pack.index)
        var out: [Int: [[Float]]] = [:]

        let dx = FloatBuffer(count: pack.total * c)
        headBackward(dx: dx, x: tape.final, rows: tape.logitRows, dLogits: dLogits)
        var grad = dx
        for l in stride(from: cfg.nLayer - 1, through: tape.startLayer - 1, by: -1) {
            if afterLayers.contains(l) { out[l] = idx.map { grad.row($0, width: c) } }
            guard l >= tape.startLayer, let lowest = afterLayers.min(), l > lowest else { continue }
            grad = blockBackward(l, try activations(l, tape), pack, tape.batch, dout: grad)
        }
        return out
    }

    /// dLoss/dδ for one δ added after block (or MLP of) `layer` at every position of `at`: the sum of
    /// `backward`'s gradients over `at`. Returns [C].
    /// - site: `.mlpOutput` when δ is on the MLP output and the model norms it before the residual
    ///   (Gemma 3, `mlpOutputGradients`; the tape must then have computed `layer`); otherwise either site
    ///   is the residual after block `layer`.
    public func deltaGradient(_ tape: ForwardTape, dLogits: [[Float]], layer: Int, at: [TokenPosition],
                              site: DeltaSite = .residual) throws -> [Float] {
        var rows = try backward(tape, dLogits: dLogits, afterLayers: [layer], at: at)[layer] ?? []
        if site == .mlpOutput { rows = try mlpOutputGradients(tape, layer: layer, residual: rows, at: at) }
        var sum = [Float](repeating: 0, count: config.dModel)
        for r in rows { for j in sum.indices { sum[j] += r[j] } }
        return sum
    }

    /// Final norm and LM head backward on the logits rows, accumulated into `dx`.
    /// - dx, x: [T, C]; rows: packed index per logits row; dLogits: one [V] row each
    private func headBackward(dx: FloatBuffer, x: FloatBuffer, rows: [Int], dLogits: [[Float]]) {
        let (c, v, n) = (config.dModel, config.vocabSize, rows.count)
        guard n > 0 else { return }
        let g = FloatBuffer(count: n * c), normed = FloatBuffer(count: n * c), dl = FloatBuffer(count: n * v)
        for (i, t) in rows.enumerated() { (g.p + i * c).update(from: x.p + t * c, count: c) }
        for (i, row) in dLogits.enumerated() {
            row.withUnsafeBufferPointer { (dl.p + i * v).update(from: $0.baseAddress!, count: v) }
        }
        let mean = FloatBuffer(count: n), rstd = FloatBuffer(count: n)
        norm(out: normed, mean: mean, rstd: rstd, inp: g, weight: weights.outputNorm, bias: weights.outputNormBias, n: n)
        let dNormed = FloatBuffer(count: n * c), dg = FloatBuffer(count: n * c)
        weights.output.backward(dinp: dNormed.p, dout: dl.p, n: n)
        normBackward(dinp: dg, dout: dNormed, inp: g, mean: mean, rstd: rstd, weight: weights.outputNorm, n: n)
        for (i, t) in rows.enumerated() {
            for j in 0..<c { dx.p[t * c + j] += dg.p[i * c + j] }
        }
    }

    /// LayerNorm or RMSNorm backward, accumulated into `dinp` ([N, C]).
    func normBackward(dinp: FloatBuffer, dout: FloatBuffer, inp: FloatBuffer, mean: FloatBuffer, rstd: FloatBuffer,
                      weight: FloatBuffer, n: Int) {
        if config.usesRMSNorm {
            RMSNorm.backward(dinp: dinp.p, dout: dout.p, inp: inp.p, rstd: rstd.p, weight: weight.p, n: n, c: config.dModel)
        } else {
            LayerNorm.backward(dinp: dinp.p, dout: dout.p, inp: inp.p, mean: mean.p, rstd: rstd.p, weight: weight.p,
                               n: n, c: config.dModel)
        }
    }
}
