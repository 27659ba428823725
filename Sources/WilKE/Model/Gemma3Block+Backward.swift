import Foundation
import Formats

// Backward of Gemma 3's block (Gemma3Block.swift), activations only, weights frozen, walking
// `gemma3Block`'s kernels in reverse. Legend as TransformerBlock.swift.
//   out = h + N_post_ffw(m),  m = W_down · geglu(N_ffn(h)):  dh = dout + N_ffnᵀ(MLPᵀ(N_post_ffwᵀ(dout)))
//   h = x + N_post_attn(Attn(N_attn(x))):                    dx = dh + N_attnᵀ(Attnᵀ(N_post_attnᵀ(dh)))
// The tape keeps only what the other families need, so the norms' 1/rms over the post-attention and MLP
// outputs and the q / k projections before their QK-norm are recomputed here (three [T, ·] passes and
// two small matmuls, against the ~15 matmuls of the block) rather than kept in `LayerActivations`.

extension TransformerModel {
    /// `blockBackward` for Gemma 3 block `l`: the gradient w.r.t. its input given `dout` ([T, C]) w.r.t.
    /// its output. Returns [T, C].
    func gemma3BlockBackward(_ l: Int, _ act: LayerActivations, _ pack: Packing, _ batch: ForwardBatch,
                             dout: FloatBuffer) -> FloatBuffer {
        let cfg = config, w = weights.layers[l]
        let (t, c, f, d) = (pack.total, cfg.dModel, cfg.dFF, cfg.headDim)
        guard let qNorm = w.qNorm, let kNorm = w.kNorm, let postAttnNorm = w.postAttnNorm,
              let postFFNNorm = w.postFFNNorm, let ffnNorm = w.ffnNorm, let wGate = w.wGate, let gate = act.gate else {
            preconditionFailure("gemma3 weights are loaded with all their norms and the gate")
        }
        let eps = cfg.normEpsF32

        // MLP: the post-FFW norm over m (act.mlp, δ included), the down projection, GeGLU, up and gate.
        let dMLP = FloatBuffer(count: t * c)
        RMSNorm.backward(dinp: dMLP.p, dout: dout.p, inp: act.mlp.p, weight: postFFNNorm.p, n: t, c: c, eps: eps)
        let dKey = FloatBuffer(count: t * f), dGate = FloatBuffer(count: t * f), dUp = FloatBuffer(count: t * f)
        w.wDown.backward(dinp: dKey.p, dout: dMLP.p, n: t)
        GeGLU.backward(dgate: dGate.p, dup: dUp.p, dout: dKey.p, gate: gate.p, up: act.up.p, n: t * f)
        let dHn = FloatBuffer(count: t * c)
        wGate.backward(dinp: dHn.p, dout: dGate.p, n: t)
        w.wUp.backward(dinp: dHn.p, dout: dUp.p, n: t)
        let dx = FloatBuffer(count: t * c) // dh first: the residual path plus the MLP branch
        dx.p.update(from: dout.p, count: t * c)
        RMSNorm.backward(dinp: dx.p, dout: dHn.p, inp: act.h.p, rstd: act.norm2Rstd.p, weight: ffnNorm.p, n: t, c: c)

        // Attention: the post-attention norm, output projection, softmax mix, RoPE, QK-norm, projections.
        let dAttnOut = FloatBuffer(count: t * c)
        RMSNorm.backward(dinp: dAttnOut.p, dout: dx.p, inp: act.attnOut.p, weight: postAttnNorm.p, n: t, c: c, eps: eps)
        let dA = FloatBuffer(count: t * cfg.qDim)
        w.wo.backward(dinp: dA.p, dout: dAttnOut.p, n: t)
        // The window needs no argument: the kept probabilities are 0 outside it, so are their gradients.
        let scale = Float(1 / (cfg.queryPreAttnScalar ?? Double(d)).squareRoot())
        let (dq, dk, dv) = attentionBackward(l, act, pack, batch, dA: dA, scale: scale)
        let theta = Float(cfg.isSlidingLayer(l) ? cfg.ropeLocalTheta ?? 10000 : cfg.ropeTheta ?? 10000)
        for (buf, heads) in [(dq, cfg.nHead), (dk, cfg.nKVHead)] {
            RoPE.backward(dx: buf.p, positions: pack.positions, nHead: heads, headDim: d, rotaryDim: cfg.rotaryDim,
                          theta: theta, interleaved: false)
        }
        // QK-norm per head row of width D; its inputs, the raw projections, are recomputed from act.xn.
        let dXn = FloatBuffer(count: t * c)
        for (proj, norm, grad, heads) in [(w.wq, qNorm, dq, cfg.nHead), (w.wk, kNorm, dk, cfg.nKVHead)] {
            let raw = FloatBuffer(count: t * heads * d), dRaw = FloatBuffer(count: t * heads * d)
            proj.forward(out: raw.p, inp: act.xn.p, bias: nil, n: t)
            RMSNorm.backward(dinp: dRaw.p, dout: grad.p, inp: raw.p, weight: norm.p, n: t * heads, c: d, eps: eps)
            proj.backward(dinp: dXn.p, dout: dRaw.p, n: t)
        }
        w.wv.backward(dinp: dXn.p, dout: dv.p, n: t)
        RMSNorm.backward(dinp: dx.p, dout: dXn.p, inp: act.x.p, rstd: act.norm1Rstd.p, weight: w.attnNorm.p, n: t, c: c)
        return dx
    }

    /// Per entry of `at`, dLoss/dm for layer `l`'s MLP output m (`act.mlp`, where an `mlpDelta` lands) from
    /// `residual`, dLoss/d(residual after block l) at the same positions ([C] each). Other families add m
    /// to the residual as it is, so the rows are returned unchanged; Gemma 3 adds N_post_ffw(m), so they go
    /// back through that norm at each position's m (the tape must have computed block `l`).
    func mlpOutputGradients(_ tape: ForwardTape, layer l: Int, residual: [[Float]], at: [TokenPosition]) throws -> [[Float]] {
        guard config.normsMLPOutput else { return residual }
        guard l >= tape.startLayer && l < config.nLayer else { throw WilKEError.invalidLayer(l) }
        guard let norm = weights.layers[l].postFFNNorm else { preconditionFailure("gemma3 layers have a post-FFW norm") }
        let act = try activations(l, tape), c = config.dModel
        return try zip(at, residual).map { p, g in
            let m = act.mlp.row(try tape.pack.index(p), width: c)
            var out = [Float](repeating: 0, count: c)
            RMSNorm.backward(dinp: &out, dout: g, inp: m, weight: norm.array, n: 1, c: c, eps: config.normEpsF32)
            return out
        }
    }
}

extension ModelConfig {
    /// Whether the MLP output reaches the residual through a norm (Gemma 3's post-FFW norm), so that a δ
    /// on it (ROME's site) is not a δ on the residual stream (MEMIT's) and the δ loop must recompute the
    /// edited layer itself (`optimizeDelta`).
    var normsMLPOutput: Bool { family == .gemma3 }
}

extension RMSNorm {
    /// `backward` without a kept 1/rms: recomputed from `inp` (Gemma's post-norms and QK-norm, whose
    /// statistics the tape does not keep). Same arguments, plus the forward's `eps`.
    static func backward(dinp: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, inp: UnsafePointer<Float>,
                         weight: UnsafePointer<Float>, n: Int, c: Int, eps: Float) {
        let rstd = FloatBuffer(count: n)
        for i in 0..<n {
            let x = inp + i * c
            var ss: Float = 0
            for j in 0..<c { ss += x[j] * x[j] }
            rstd.p[i] = 1 / sqrtf(ss / Float(c) + eps)
        }
        backward(dinp: dinp, dout: dout, inp: inp, rstd: rstd.p, weight: weight, n: n, c: c)
    }
}

extension GeGLU {
    /// Accumulates both input gradients of out = gelu(gate) ⊙ up: dup += gelu(gate)·dout and
    /// dgate += gelu'(gate)·up·dout, gelu' as in `GELUNew.backward`.
    /// - dgate, dup: [N], accumulated; dout, gate, up: [N]
    static func backward(dgate: UnsafeMutablePointer<Float>, dup: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
                         gate: UnsafePointer<Float>, up: UnsafePointer<Float>, n: Int) {
        let c = GELUNew.c
        for i in 0..<n {
            let x = gate[i]
            let t = tanhf(c * (x + 0.044715 * x * x * x))
            let gelu = 0.5 * x * (1 + t)
            let slope = 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * c * (1 + 3 * 0.044715 * x * x)
            dup[i] += gelu * dout[i]
            dgate[i] += slope * up[i] * dout[i]
        }
    }
}
