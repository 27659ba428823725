// port of llm.c attention_backward for packed rows, cached prefixes and GQA; activations only.
// Legend as Attention.swift: T packed new tokens, n a row's new tokens, P its cached prefix length,
// H query heads, G kv heads, D head dim. The prefix keys/values are constants (no gradient).
import Dispatch
import Foundation

private struct BackwardPointers: @unchecked Sendable {
    let dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>, dv: UnsafeMutablePointer<Float>
    let da: UnsafePointer<Float>, q: UnsafePointer<Float>
}

extension Attention {
    /// Accumulates the gradients w.r.t. the new queries, keys and values of every row. With p the kept
    /// probabilities of query i: dp_j = da_i·v_j, ds_j = p_j (dp_j − Σ p·dp), dq_i += ds·K / √D,
    /// dk_j += ds_j q_i / √D and dv_j += p_j da_i for the row's new positions j ≥ P.
    /// - dq: [T, H·D], dk, dv: [T, G·D], accumulated (packed like q / the new keys)
    /// - da: [T, H·D] gradient of the attention output
    /// - q: [T, H·D] (after RoPE)
    /// - rows: as in `forward`, with `att` set (the forward's probabilities)
    /// - scale: the forward's score scale, 1/√D unless given (it stands for 1/√D above)
    static func backward(dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>, dv: UnsafeMutablePointer<Float>,
                         da: UnsafePointer<Float>, q: UnsafePointer<Float>, rows: [AttentionRow],
                         nHead: Int, nKVHead: Int, headDim: Int, scale: Float? = nil) {
        let scale = scale ?? 1 / sqrtf(Float(headDim))
        let ptrs = BackwardPointers(dq: dq, dk: dk, dv: dv, da: da, q: q)
        let work = rows.reduce(0) { $0 + $1.n * ($1.past + $1.n) } * nHead * headDim
        // One task per (row, kv head): the query heads sharing a kv head all add into its dk / dv.
        let tasks = rows.count * nKVHead
        if work > 150_000 && tasks > 1 {
            DispatchQueue.concurrentPerform(iterations: tasks) { i in
                group(ptrs, rows[i / nKVHead], i % nKVHead, nHead, nKVHead, headDim, scale)
            }
        } else {
            for i in 0..<tasks { group(ptrs, rows[i / nKVHead], i % nKVHead, nHead, nKVHead, headDim, scale) }
        }
    }

    private static func group(_ p: BackwardPointers, _ row: AttentionRow, _ g: Int, _ nHead: Int, _ nKVHead: Int,
                              _ headDim: Int, _ scale: Float) {
        guard let att = row.att else { preconditionFailure("attention backward needs the forward's probabilities") }
        let qDim = nHead * headDim, kvDim = nKVHead * headDim
        let perGroup = nHead / nKVHead
        let total = row.past + row.n
        let ds = UnsafeMutablePointer<Float>.allocate(capacity: max(total, 1))
        defer { ds.deallocate() }
        for h in (g * perGroup)..<((g + 1) * perGroup) {
            for i in 0..<row.n {
                let t = row.offset + i
                let probs = att + (h * row.n + i) * total
                let dai = p.da + t * qDim + h * headDim, qi = p.q + t * qDim + h * headDim
                let dqi = p.dq + t * qDim + h * headDim
                let visible = row.past + i + 1
                var dot: Float = 0
                for j in 0..<visible {
                    let vj = row.v + j * kvDim + g * headDim
                    var dp: Float = 0
                    for d in 0..<headDim { dp += dai[d] * vj[d] }
                    ds[j] = dp
                    dot += probs[j] * dp
                }
                for j in 0..<visible {
                    let s = probs[j] * (ds[j] - dot) * scale
                    let kj = row.k + j * kvDim + g * headDim
                    for d in 0..<headDim { dqi[d] += s * kj[d] }
                    guard j >= row.past else { continue }
                    let newJ = row.offset + j - row.past
                    let dkj = p.dk + newJ * kvDim + g * headDim, dvj = p.dv + newJ * kvDim + g * headDim
                    let pj = probs[j]
                    for d in 0..<headDim {
                        dkj[d] += s * qi[d]
                        dvj[d] += pj * dai[d]
                    }
                }
            }
        }
    }
}
