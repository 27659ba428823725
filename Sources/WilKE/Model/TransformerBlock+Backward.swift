import Formats

// Backward of one block, activations only, walking `sharedBlock`'s kernels in reverse. Legend as
// TransformerBlock.swift.
//   sequential: dh = dout + N2ᵀ(MLPᵀ(dout));  dx = dh + N1ᵀ(Attnᵀ(dh))
//   parallel:   dx = dout + N1ᵀ(Attnᵀ(dout) + MLPᵀ(dout))

extension TransformerModel {
    /// Gradient w.r.t. block `l`'s input given the gradient `dout` ([T, C]) w.r.t. its output. Returns [T, C].
    /// The architecture's engine decides how (most run `sharedBlockBackward`).
    func blockBackward(_ l: Int, _ act: LayerActivations, _ pack: Packing, _ batch: ForwardBatch,
                       dout: FloatBuffer) -> FloatBuffer {
        engine.backward(self, l, act, pack, batch, dout: dout)
    }

    /// The backward of `sharedBlock`.
    func sharedBlockBackward(_ l: Int, _ act: LayerActivations, _ pack: Packing, _ batch: ForwardBatch,
                             dout: FloatBuffer) -> FloatBuffer {
        let cfg = config, w = weights.layers[l], traits = engine.traits
        let (t, c, f) = (pack.total, cfg.dModel, cfg.dFF)

        // MLP: down projection, activation, up (and gate) projections.
        let dKey = FloatBuffer(count: t * f), dUp = FloatBuffer(count: t * f)
        w.wDown.backward(dinp: dKey.p, dout: dout.p, n: t)
        let dMLPIn = FloatBuffer(count: t * c)
        if let gate = act.gate, let wGate = w.wGate {
            let dGate = FloatBuffer(count: t * f)
            SwiGLU.backward(dgate: dGate.p, dup: dUp.p, dout: dKey.p, gate: gate.p, up: act.up.p, n: t * f)
            wGate.backward(dinp: dMLPIn.p, dout: dGate.p, n: t)
        } else {
            GELUNew.backward(dinp: dUp.p, inp: act.up.p, dout: dKey.p, n: t * f)
        }
        w.wUp.backward(dinp: dMLPIn.p, dout: dUp.p, n: t)

        // The gradient reaching the attention output, and the accumulator of the first norm's output.
        let dx = FloatBuffer(count: t * c)
        dx.p.update(from: dout.p, count: t * c)
        let dXn: FloatBuffer
        if traits.parallel {
            dXn = dMLPIn
        } else {
            normBackward(dinp: dx, dout: dMLPIn, inp: act.h, mean: act.norm2Mean, rstd: act.norm2Rstd,
                         weight: w.ffnNorm!, n: t)
            dXn = FloatBuffer(count: t * c)
        }
        let dAttnOut = traits.parallel ? dout : dx

        // Attention: output projection, softmax mix per row and head, RoPE, q/k/v projections.
        let dA = FloatBuffer(count: t * cfg.qDim)
        w.wo.backward(dinp: dA.p, dout: dAttnOut.p, n: t)
        let (dq, dk, dv) = attentionBackward(l, act, pack, batch, dA: dA)
        if traits.rotary != .none {
            for (buf, heads) in [(dq, cfg.nHead), (dk, cfg.nKVHead)] {
                RoPE.backward(dx: buf.p, positions: pack.positions, nHead: heads, headDim: cfg.headDim,
                              rotaryDim: cfg.rotaryDim, theta: cfg.ropeBase, interleaved: traits.rotary == .interleaved,
                              divisors: weights.ropeDivisors)
            }
        }
        let (dqIn, dkIn) = traits.qkNorm ? headNormsBackward(l, act, dq: dq, dk: dk, tokens: t) : (dq, dk)
        w.wq.backward(dinp: dXn.p, dout: dqIn.p, n: t)
        w.wk.backward(dinp: dXn.p, dout: dkIn.p, n: t)
        w.wv.backward(dinp: dXn.p, dout: dv.p, n: t)
        normBackward(dinp: dx, dout: dXn, inp: act.x, mean: act.norm1Mean, rstd: act.norm1Rstd, weight: w.attnNorm, n: t)
        return dx
    }

    /// Through Qwen3's per-head norms: the tape keeps q and k after them and the block input x (not its
    /// norm z, which the blocks of a pass share), so z = N1(x), the projections W_q z + b, W_k z + b and
    /// their 1/rms are recomputed, then RMSNorm's backward runs over the [T·H, D] head rows. Returns the
    /// gradients w.r.t. the projections' outputs.
    /// - dq: [T, H·D]; dk: [T, G·D], w.r.t. the normed (unrotated) q and k
    private func headNormsBackward(_ l: Int, _ act: LayerActivations, dq: FloatBuffer, dk: FloatBuffer,
                                   tokens t: Int) -> (FloatBuffer, FloatBuffer) {
        let cfg = config, w = weights.layers[l]
        guard let qNorm = w.qNorm, let kNorm = w.kNorm else { preconditionFailure("QK-norm weights are loaded with the layer") }
        let (h, g, d) = (cfg.nHead, cfg.nKVHead, cfg.headDim)
        let z = FloatBuffer(count: t * cfg.dModel), zMean = FloatBuffer(count: t), zRstd = FloatBuffer(count: t)
        norm(out: z, mean: zMean, rstd: zRstd, inp: act.x, weight: w.attnNorm, bias: w.attnNormBias, n: t)
        let q = FloatBuffer(count: t * h * d), k = FloatBuffer(count: t * g * d)
        w.wq.forward(out: q.p, inp: z.p, bias: w.bq?.p, n: t)
        w.wk.forward(out: k.p, inp: z.p, bias: w.bk?.p, n: t)
        let rq = FloatBuffer(count: t * h), rk = FloatBuffer(count: t * g)
        let normed = (q: FloatBuffer(count: t * h * d), k: FloatBuffer(count: t * g * d))
        RMSNorm.forward(out: normed.q.p, rstd: rq.p, inp: q.p, weight: qNorm.p, n: t * h, c: d, eps: cfg.normEpsF32)
        RMSNorm.forward(out: normed.k.p, rstd: rk.p, inp: k.p, weight: kNorm.p, n: t * g, c: d, eps: cfg.normEpsF32)
        let dqIn = FloatBuffer(count: t * h * d), dkIn = FloatBuffer(count: t * g * d)
        RMSNorm.backward(dinp: dqIn.p, dout: dq.p, inp: q.p, rstd: rq.p, weight: qNorm.p, n: t * h, c: d)
        RMSNorm.backward(dinp: dkIn.p, dout: dk.p, inp: k.p, rstd: rk.p, weight: kNorm.p, n: t * g, c: d)
        return (dqIn, dkIn)
    }

    /// The softmax mix's backward over every row's key/value history, one pass for all families.
    /// - dA: [T, H·D] gradient w.r.t. the mix; scale: the forward's query scale (nil: 1/√D)
    /// - Returns: [T, H·D], [T, G·D], [T, G·D] gradients w.r.t. q and k after RoPE, and v.
    func attentionBackward(_ l: Int, _ act: LayerActivations, _ pack: Packing, _ batch: ForwardBatch, dA: FloatBuffer,
                           scale: Float? = nil) -> (dq: FloatBuffer, dk: FloatBuffer, dv: FloatBuffer) {
        let cfg = config, t = pack.total
        let dq = FloatBuffer(count: t * cfg.qDim), dk = FloatBuffer(count: t * cfg.kvDim), dv = FloatBuffer(count: t * cfg.kvDim)
        let histories = (0..<pack.rows).map { r in history(l, act, pack, batch, row: r) }
        let rows = (0..<pack.rows).map { r in
            AttentionRow(offset: pack.offsets[r], n: pack.lengths[r], past: pack.starts[r], k: UnsafePointer(histories[r].k.p),
                         v: UnsafePointer(histories[r].v.p), att: act.att[r].p)
        }
        Attention.backward(dq: dq.p, dk: dk.p, dv: dv.p, da: dA.p, q: act.q.p, rows: rows, nHead: cfg.nHead,
                           nKVHead: cfg.nKVHead, headDim: cfg.headDim, scale: scale)
        withExtendedLifetime(histories) {}
        return (dq, dk, dv)
    }

    /// Row `r`'s full key/value history at layer `l` ([P + n, G·D] each, after RoPE): its cached prefix
    /// followed by the keys/values the forward computed for its new tokens.
    func history(_ l: Int, _ act: LayerActivations, _ pack: Packing, _ batch: ForwardBatch,
                         row r: Int) -> (k: FloatBuffer, v: FloatBuffer) {
        let kvd = config.kvDim, (o, n, past) = (pack.offsets[r], pack.lengths[r], pack.starts[r])
        let k = FloatBuffer(count: (past + n) * kvd), v = FloatBuffer(count: (past + n) * kvd)
        if past > 0, let prefix = batch.prefixes[r] {
            prefix.k[l].withUnsafeBufferPointer { k.p.update(from: $0.baseAddress!, count: past * kvd) }
            prefix.v[l].withUnsafeBufferPointer { v.p.update(from: $0.baseAddress!, count: past * kvd) }
        }
        (k.p + past * kvd).update(from: act.k.p + o * kvd, count: n * kvd)
        (v.p + past * kvd).update(from: act.v.p + o * kvd, count: n * kvd)
        return (k, v)
    }
}
