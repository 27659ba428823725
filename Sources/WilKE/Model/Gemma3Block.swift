import Foundation

// Gemma 3's block, after transformers' Gemma3DecoderLayer / Gemma3Attention / Gemma3MLP. Legend as in
// TransformerBlock.swift (T packed tokens, C width, H/G query/kv heads, D head dim, F MLP width):
//   h   = x + N_post_attn(Attn(N_attn(x)))      q and k RMS-normed per head (over D) before RoPE
//   out = h + N_post_ffw(MLP(N_ffn(h)))         MLP(z) = W_down (gelu_tanh(W_gate z) ⊙ W_up z)
// Layer l is a sliding layer when (l + 1) % pattern != 0: it attends to the last `slidingWindow`
// positions only and rotates with the local RoPE base; the others attend globally with `ropeTheta`.
// Every norm is a plain RMSNorm because a GGUF already stores Gemma's 1 + w (see `LayerWeights.qNorm`).

extension TransformerModel {
    /// Forward of Gemma 3 block `l`, filling `act` from `act.x`, as `block` does for the other families.
    /// `act.attnOut` and `act.mlp` hold the projections before their post-norms (`act.mlp` = W_down · key,
    /// ROME's value, where `mlpDelta` is added), `act.h` the residual after attention.
    func gemma3Block(_ l: Int, _ act: LayerActivations, _ pack: Packing, _ kv: inout [KVCache], keepAttention: Bool,
                     mlpDelta: ([Float], [Int])?) throws {
        let cfg = config, w = weights.layers[l]
        let (t, c, f, d) = (pack.total, cfg.dModel, cfg.dFF, cfg.headDim)
        guard let qNorm = w.qNorm, let kNorm = w.kNorm, let postAttnNorm = w.postAttnNorm,
              let postFFNNorm = w.postFFNNorm, let ffnNorm = w.ffnNorm, let wGate = w.wGate, let gate = act.gate else {
            preconditionFailure("gemma3 weights are loaded with all their norms and the gate")
        }
        let eps = cfg.normEpsF32
        norm(out: act.xn, mean: act.norm1Mean, rstd: act.norm1Rstd, inp: act.x, weight: w.attnNorm, bias: nil, n: t)

        w.wq.forward(out: act.q.p, inp: act.xn.p, bias: nil, n: t)
        w.wk.forward(out: act.k.p, inp: act.xn.p, bias: nil, n: t)
        w.wv.forward(out: act.v.p, inp: act.xn.p, bias: nil, n: t)
        // Per-head QK-norm, in place: [T, H·D] is [T·H, D] rows (RMSNorm reads a row fully before writing it).
        let headRstd = FloatBuffer(count: t * cfg.nHead)
        RMSNorm.forward(out: act.q.p, rstd: headRstd.p, inp: act.q.p, weight: qNorm.p, n: t * cfg.nHead, c: d, eps: eps)
        RMSNorm.forward(out: act.k.p, rstd: headRstd.p, inp: act.k.p, weight: kNorm.p, n: t * cfg.nKVHead, c: d, eps: eps)
        let sliding = cfg.isSlidingLayer(l)
        let theta = Float(sliding ? cfg.ropeLocalTheta ?? 10000 : cfg.ropeTheta ?? 10000)
        for (buf, heads) in [(act.q, cfg.nHead), (act.k, cfg.nKVHead)] {
            RoPE.forward(x: buf.p, positions: pack.positions, nHead: heads, headDim: d, rotaryDim: cfg.rotaryDim,
                         theta: theta, interleaved: false)
        }
        let scale = Float(1 / (cfg.queryPreAttnScalar ?? Double(d)).squareRoot())
        try attend(l, act, pack, &kv, keepAttention: keepAttention, window: sliding ? cfg.slidingWindow : nil, scale: scale)
        w.wo.forward(out: act.attnOut.p, inp: act.a.p, bias: nil, n: t)

        // h = x + N_post_attn(attnOut), the post-norm written straight into h.
        let rowRstd = FloatBuffer(count: t)
        RMSNorm.forward(out: act.h.p, rstd: rowRstd.p, inp: act.attnOut.p, weight: postAttnNorm.p, n: t, c: c, eps: eps)
        for i in 0..<(t * c) { act.h.p[i] += act.x.p[i] }
        norm(out: act.hn, mean: act.norm2Mean, rstd: act.norm2Rstd, inp: act.h, weight: ffnNorm, bias: nil, n: t)

        w.wUp.forward(out: act.up.p, inp: act.hn.p, bias: nil, n: t)
        wGate.forward(out: gate.p, inp: act.hn.p, bias: nil, n: t)
        GeGLU.forward(out: act.key.p, gate: gate.p, up: act.up.p, n: t * f)
        w.wDown.forward(out: act.mlp.p, inp: act.key.p, bias: nil, n: t)
        if let (vec, idx) = mlpDelta {
            for i in idx { for j in 0..<c { act.mlp.p[i * c + j] += vec[j] } }
        }
        RMSNorm.forward(out: act.out.p, rstd: rowRstd.p, inp: act.mlp.p, weight: postFFNNorm.p, n: t, c: c, eps: eps)
        for i in 0..<(t * c) { act.out.p[i] += act.h.p[i] }
    }
}

/// Gemma's gated MLP activation: gelu_pytorch_tanh(gate) ⊙ up (the tanh approximation GPT-2 calls gelu_new).
enum GeGLU {
    /// - out: [N]; gate, up: [N]
    static func forward(out: UnsafeMutablePointer<Float>, gate: UnsafePointer<Float>, up: UnsafePointer<Float>, n: Int) {
        GELUNew.forward(out: out, inp: gate, n: n)
        for i in 0..<n { out[i] *= up[i] }
    }
}
