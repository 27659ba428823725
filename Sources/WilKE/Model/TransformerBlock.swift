import Formats

// One transformer block over packed tokens: the shared block every architecture but Gemma 3 runs, with
// the variations its `ArchitectureTraits` name (ArchitectureEngine.swift). Legend: T packed new tokens,
// C width, H/G query/kv heads, D head dim, F MLP width.
//   sequential (GPT-2, llama family): h = x + Attn(N1(x));  out = h + MLP(N2(h))
//   parallel (GPT-J):                 out = x + Attn(N1(x)) + MLP(N1(x))
//   Attn: q, k, v projections; per-head RMSNorm of q and k (Qwen3); RoPE; softmax over the layer's window.

/// Everything a block computes, kept so a backward pass can reuse it (llm.c's activation tensors).
final class LayerActivations: @unchecked Sendable {
    /// [T, C] block input (the residual stream entering the layer); replaced when a tape is recycled
    var x: FloatBuffer
    /// [T, C] first norm output; [T] its mean (LayerNorm only) and 1/std
    let xn: FloatBuffer, norm1Mean: FloatBuffer, norm1Rstd: FloatBuffer
    /// [T, H·D], [T, G·D], [T, G·D] projections (q, k after RoPE)
    let q: FloatBuffer, k: FloatBuffer, v: FloatBuffer
    /// per row [H, n, past + n] softmax probabilities (only when kept)
    var att: [FloatBuffer] = []
    /// [T, H·D] attention mix before the output projection; [T, C] after it
    let a: FloatBuffer, attnOut: FloatBuffer
    /// [T, C] residual after attention, its norm, and [T] norm stats (sequential blocks)
    let h: FloatBuffer, hn: FloatBuffer, norm2Mean: FloatBuffer, norm2Rstd: FloatBuffer
    /// [T, F] up projection (GELU pre-activation or SwiGLU up), SwiGLU gate, and the key k
    let up: FloatBuffer, gate: FloatBuffer?, key: FloatBuffer
    /// [T, C] MLP output (after any mlpDelta) and block output
    let mlp: FloatBuffer, out: FloatBuffer

    /// - scratch: a block of the same pass whose xn, a, attnOut, hn, key and mlp this one reuses (see
    ///   `sharesScratch`): a tape then keeps per block only what `blockBackward` reads.
    init(_ cfg: ModelConfig, tokens t: Int, input: FloatBuffer, scratch: LayerActivations? = nil) {
        let (c, f) = (cfg.dModel, cfg.dFF)
        let seq = !cfg.engine.traits.parallel
        let s = scratch.flatMap { $0.mlp.count == t * c ? $0 : nil }
        x = input
        xn = s?.xn ?? FloatBuffer(count: t * c); norm1Mean = FloatBuffer(count: t); norm1Rstd = FloatBuffer(count: t)
        q = FloatBuffer(count: t * cfg.qDim); k = FloatBuffer(count: t * cfg.kvDim); v = FloatBuffer(count: t * cfg.kvDim)
        a = s?.a ?? FloatBuffer(count: t * cfg.qDim); attnOut = s?.attnOut ?? FloatBuffer(count: t * c)
        h = FloatBuffer(count: seq ? t * c : 0); hn = s?.hn ?? FloatBuffer(count: seq ? t * c : 0)
        norm2Mean = FloatBuffer(count: seq ? t : 0); norm2Rstd = FloatBuffer(count: seq ? t : 0)
        up = FloatBuffer(count: t * f); gate = cfg.usesRMSNorm ? FloatBuffer(count: t * f) : nil
        key = s?.key ?? FloatBuffer(count: t * f)
        mlp = s?.mlp ?? FloatBuffer(count: t * c); out = FloatBuffer(count: t * c)
    }

    /// Whether the blocks of one taped pass may share their scratch: `blockBackward` never reads xn, a,
    /// attnOut, hn, key or mlp (they only feed weight gradients, which a frozen-weight backward skips), so
    /// a tape keeps x, q, k, v, h, up, gate and out: 2·C + H·D + 2·G·D + 2·F floats per token instead of
    /// 9·C + 3·F + H·D + 2·G·D (the 8B shape: 168 KiB instead of 336 KiB). Gemma 3's backward reads its
    /// post-norm inputs (attnOut, mlp), so its blocks keep their own (`ArchitectureEngine.sharesTapeScratch`).
    static func sharesScratch(_ cfg: ModelConfig) -> Bool { cfg.engine.sharesTapeScratch }
}

extension TransformerModel {
    /// Forward of block `l`, filling `act` from `act.x`; appends the new keys/values to each row's `kv`.
    /// The architecture's engine decides how (most run `sharedBlock`).
    func block(_ l: Int, _ act: LayerActivations, _ pack: Packing, _ kv: inout [KVCache], keepAttention: Bool,
               mlpDelta: ([Float], [Int])?) throws {
        try engine.forward(self, l, act, pack, &kv, keepAttention: keepAttention, mlpDelta: mlpDelta)
    }

    /// The shared block (see the legend at the top of the file).
    func sharedBlock(_ l: Int, _ act: LayerActivations, _ pack: Packing, _ kv: inout [KVCache], keepAttention: Bool,
                     mlpDelta: ([Float], [Int])?) throws {
        let cfg = config, w = weights.layers[l], traits = engine.traits
        let (t, c, f) = (pack.total, cfg.dModel, cfg.dFF)
        norm(out: act.xn, mean: act.norm1Mean, rstd: act.norm1Rstd, inp: act.x, weight: w.attnNorm, bias: w.attnNormBias, n: t)

        // Attention: projections over all packed tokens, RoPE at absolute positions, then per row and head.
        w.wq.forward(out: act.q.p, inp: act.xn.p, bias: w.bq?.p, n: t)
        w.wk.forward(out: act.k.p, inp: act.xn.p, bias: w.bk?.p, n: t)
        w.wv.forward(out: act.v.p, inp: act.xn.p, bias: w.bv?.p, n: t)
        if traits.qkNorm { headNorms(l, q: act.q, k: act.k, tokens: t) }
        if traits.rotary != .none {
            for buf in [act.q, act.k] {
                RoPE.forward(x: buf.p, positions: pack.positions, nHead: buf === act.q ? cfg.nHead : cfg.nKVHead,
                             headDim: cfg.headDim, rotaryDim: cfg.rotaryDim, theta: cfg.ropeBase,
                             interleaved: traits.rotary == .interleaved, divisors: weights.ropeDivisors)
            }
        }
        try attend(l, act, pack, &kv, keepAttention: keepAttention, window: engine.window(layer: l, cfg))
        w.wo.forward(out: act.attnOut.p, inp: act.a.p, bias: w.bo?.p, n: t)

        // MLP input: the same normed x (parallel) or the norm of the post-attention residual.
        let mlpIn: FloatBuffer
        if traits.parallel {
            mlpIn = act.xn
        } else {
            for i in 0..<(t * c) { act.h.p[i] = act.x.p[i] + act.attnOut.p[i] }
            norm(out: act.hn, mean: act.norm2Mean, rstd: act.norm2Rstd, inp: act.h, weight: w.ffnNorm!, bias: w.ffnNormBias, n: t)
            mlpIn = act.hn
        }
        w.wUp.forward(out: act.up.p, inp: mlpIn.p, bias: w.bUp?.p, n: t)
        if let gate = act.gate, let wGate = w.wGate {
            wGate.forward(out: gate.p, inp: mlpIn.p, bias: nil, n: t)
            SwiGLU.forward(out: act.key.p, gate: gate.p, up: act.up.p, n: t * f)
        } else {
            GELUNew.forward(out: act.key.p, inp: act.up.p, n: t * f)
        }
        w.wDown.forward(out: act.mlp.p, inp: act.key.p, bias: w.bDown?.p, n: t)
        if let (vec, idx) = mlpDelta {
            for i in idx { for j in 0..<c { act.mlp.p[i * c + j] += vec[j] } }
        }
        let base = traits.parallel ? act.x : act.h
        let extra: FloatBuffer? = traits.parallel ? act.attnOut : nil
        for i in 0..<(t * c) { act.out.p[i] = base.p[i] + act.mlp.p[i] + (extra?.p[i] ?? 0) }
    }

    /// Appends layer `l`'s new keys and values (`act.k`, `act.v`, after RoPE) to each row's history and
    /// attends every new query (`act.q`) over it into `act.a`. `window` (Gemma 3's sliding layers) limits
    /// query position p to keys p - window + 1 ... p; `scale` replaces 1/√D.
    func attend(_ l: Int, _ act: LayerActivations, _ pack: Packing, _ kv: inout [KVCache], keepAttention: Bool,
                window: Int? = nil, scale: Float? = nil) throws {
        let cfg = config
        let kvd = cfg.kvDim
        for r in 0..<pack.rows {
            let (o, n) = (pack.offsets[r], pack.lengths[r])
            guard kv[r].k[l].count == pack.starts[r] * kvd else {
                throw WilKEError.invalidBatch("row \(r)'s cache lacks layer \(l) keys for its \(pack.starts[r]) positions")
            }
            kv[r].k[l] += UnsafeBufferPointer(start: act.k.p + o * kvd, count: n * kvd)
            kv[r].v[l] += UnsafeBufferPointer(start: act.v.p + o * kvd, count: n * kvd)
            kv[r].count = max(kv[r].count, pack.starts[r] + n)
        }
        act.att = keepAttention
            ? (0..<pack.rows).map { FloatBuffer(count: cfg.nHead * pack.lengths[$0] * (pack.starts[$0] + pack.lengths[$0])) }
            : []
        withRowPointers(kv, layer: l) { kPtrs, vPtrs in
            let rows = (0..<pack.rows).map { r in
                AttentionRow(offset: pack.offsets[r], n: pack.lengths[r], past: pack.starts[r], k: kPtrs[r], v: vPtrs[r],
                             att: keepAttention ? act.att[r].p : nil)
            }
            Attention.forward(out: act.a.p, q: act.q.p, rows: rows, nHead: cfg.nHead, nKVHead: cfg.nKVHead,
                              headDim: cfg.headDim, window: window, scale: scale)
        }
    }

    /// Qwen3's per-head RMSNorm of the projections, in place: [T, H·D] is [T·H, D] rows (RMSNorm reads a
    /// row fully before writing it). The backward recomputes 1/rms, so it is not kept.
    /// - q: [T, H·D]; k: [T, G·D]
    func headNorms(_ l: Int, q: FloatBuffer, k: FloatBuffer, tokens t: Int) {
        let cfg = config, w = weights.layers[l]
        guard let qNorm = w.qNorm, let kNorm = w.kNorm else { preconditionFailure("QK-norm weights are loaded with the layer") }
        let r = (q: FloatBuffer(count: t * cfg.nHead), k: FloatBuffer(count: t * cfg.nKVHead))
        RMSNorm.forward(out: q.p, rstd: r.q.p, inp: q.p, weight: qNorm.p, n: t * cfg.nHead, c: cfg.headDim, eps: cfg.normEpsF32)
        RMSNorm.forward(out: k.p, rstd: r.k.p, inp: k.p, weight: kNorm.p, n: t * cfg.nKVHead, c: cfg.headDim, eps: cfg.normEpsF32)
    }

    /// LayerNorm (GPT-2 / GPT-J) or RMSNorm (llama) over `n` rows of width C.
    func norm(out: FloatBuffer, mean: FloatBuffer, rstd: FloatBuffer, inp: FloatBuffer, weight: FloatBuffer,
              bias: FloatBuffer?, n: Int) {
        if config.usesRMSNorm {
            RMSNorm.forward(out: out.p, rstd: rstd.p, inp: inp.p, weight: weight.p, n: n, c: config.dModel, eps: config.normEpsF32)
        } else {
            LayerNorm.forward(out: out.p, mean: mean.p, rstd: rstd.p, inp: inp.p, weight: weight.p, bias: bias?.p,
                              n: n, c: config.dModel, eps: config.normEpsF32)
        }
    }
}

/// Pins every row's layer-`l` key and value arrays for the duration of `body`.
private func withRowPointers(_ kv: [KVCache], layer l: Int,
                             _ body: ([UnsafePointer<Float>], [UnsafePointer<Float>]) throws -> Void) rethrows {
    var kPtrs: [UnsafePointer<Float>] = [], vPtrs: [UnsafePointer<Float>] = []
    func pin(_ r: Int) throws {
        if r == kv.count { return try body(kPtrs, vPtrs) }
        try kv[r].k[l].withUnsafeBufferPointer { kb in
            try kv[r].v[l].withUnsafeBufferPointer { vb in
                kPtrs.append(kb.baseAddress ?? UnsafePointer(bitPattern: 8)!)
                vPtrs.append(vb.baseAddress ?? UnsafePointer(bitPattern: 8)!)
                try pin(r + 1)
            }
        }
    }
    try pin(0)
}
