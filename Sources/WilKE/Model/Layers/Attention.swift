// port of llm.c attention_forward, generalised to packed rows, cached prefixes and GQA.
// Legend: T packed new tokens, n a row's new tokens, P its cached prefix length, H query heads,
// G kv heads (H % G == 0, query head h reads kv head h / (H/G)), D head dim.
import Dispatch
import Foundation

/// One row of a packed attention call: its new queries and its full key/value history (prefix + new).
struct AttentionRow: @unchecked Sendable {
    /// Packed index of the row's first new token in `q` / `out`.
    var offset: Int
    /// New tokens of the row.
    var n: Int
    /// Cached positions before them; query i sits at absolute position past + i.
    var past: Int
    /// [past + n, G·D]
    var k: UnsafePointer<Float>
    /// [past + n, G·D]
    var v: UnsafePointer<Float>
    /// [H, n, past + n] softmax probabilities (kept for backward; masked entries 0), or nil.
    var att: UnsafeMutablePointer<Float>?
}

private struct SendablePointers: @unchecked Sendable {
    let out: UnsafeMutablePointer<Float>
    let q: UnsafePointer<Float>
}

enum Attention {
    /// Causal softmax attention of every new query over its row's keys 0...(past + i), or only the last
    /// `window` of them (Gemma 3's sliding layers: HF masks keys with q_pos − k_pos ≥ window).
    /// - out: [T, H·D]
    /// - q: [T, H·D] (after RoPE)
    /// - rows: see `AttentionRow`
    /// - scale: the score scale, 1/√D unless given (Gemma 3: query_pre_attn_scalar^-1/2)
    static func forward(out: UnsafeMutablePointer<Float>, q: UnsafePointer<Float>, rows: [AttentionRow],
                        nHead: Int, nKVHead: Int, headDim: Int, window: Int? = nil, scale: Float? = nil) {
        let shape = HeadShape(nHead: nHead, nKVHead: nKVHead, headDim: headDim, window: window ?? .max,
                              scale: scale ?? 1 / sqrtf(Float(headDim)))
        let ptrs = SendablePointers(out: out, q: q)
        let work = rows.reduce(0) { $0 + $1.n * ($1.past + $1.n) } * nHead * headDim
        let tasks = rows.count * nHead
        // Two cores: splitting only pays once a call does a few hundred thousand multiply-adds.
        if work > 300_000 && tasks > 1 {
            DispatchQueue.concurrentPerform(iterations: tasks) { i in
                head(ptrs.out, ptrs.q, rows[i / nHead], i % nHead, shape)
            }
        } else {
            for i in 0..<tasks { head(out, q, rows[i / nHead], i % nHead, shape) }
        }
    }

    /// The per-call constants of `head`.
    private struct HeadShape: Sendable {
        let nHead: Int, nKVHead: Int, headDim: Int, window: Int
        let scale: Float
    }

    private static func head(_ out: UnsafeMutablePointer<Float>, _ q: UnsafePointer<Float>, _ row: AttentionRow,
                             _ h: Int, _ shape: HeadShape) {
        let (nHead, nKVHead, headDim, scale) = (shape.nHead, shape.nKVHead, shape.headDim, shape.scale)
        let qDim = nHead * headDim, kvDim = nKVHead * headDim
        let g = h / (nHead / nKVHead)
        let total = row.past + row.n
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: max(total, 1))
        defer { scratch.deallocate() }
        for i in 0..<row.n {
            let qi = q + (row.offset + i) * qDim + h * headDim
            let visible = row.past + i + 1
            // First key in the window; keys before it stay 0 like the future ones.
            let first = shape.window < visible ? visible - shape.window : 0
            let s = row.att.map { $0 + (h * row.n + i) * total } ?? scratch
            for j in 0..<first { s[j] = 0 }
            var mx = -Float.infinity
            for j in first..<visible {
                let kj = row.k + j * kvDim + g * headDim
                var dot: Float = 0
                for d in 0..<headDim { dot += qi[d] * kj[d] }
                s[j] = dot * scale
                mx = max(mx, s[j])
            }
            var sum: Float = 0
            for j in first..<visible { s[j] = expf(s[j] - mx); sum += s[j] }
            let inv = 1 / sum
            for j in first..<visible { s[j] *= inv }
            for j in visible..<total { s[j] = 0 }
            let o = out + (row.offset + i) * qDim + h * headDim
            for d in 0..<headDim { o[d] = 0 }
            for j in first..<visible {
                let vj = row.v + j * kvDim + g * headDim, p = s[j]
                for d in 0..<headDim { o[d] += p * vj[d] }
            }
        }
    }

    /// Reference: materialise full-length K/V, no prefix split, plain loops (tests only).
    /// - out: [n, H·D]; q: [n, H·D]; k, v: [n, G·D]
    static func forwardNaive(out: inout [Float], q: [Float], k: [Float], v: [Float], n: Int,
                             nHead: Int, nKVHead: Int, headDim: Int) {
        let qDim = nHead * headDim, kvDim = nKVHead * headDim
        for h in 0..<nHead {
            let g = h * nKVHead / nHead
            for i in 0..<n {
                var w = [Double](repeating: 0, count: i + 1)
                for j in 0...i {
                    var dot = 0.0
                    for d in 0..<headDim { dot += Double(q[i * qDim + h * headDim + d]) * Double(k[j * kvDim + g * headDim + d]) }
                    w[j] = exp(dot / Double(headDim).squareRoot())
                }
                let sum = w.reduce(0, +)
                for d in 0..<headDim {
                    var acc = 0.0
                    for j in 0...i { acc += w[j] / sum * Double(v[j * kvDim + g * headDim + d]) }
                    out[i * qDim + h * headDim + d] = Float(acc)
                }
            }
        }
    }
}
