// ROME's compute_v loss (ALGORITHM.md §2.3, kmeng01/rome rome/compute_v.py) over the logits rows of one
// forward pass, with its gradient w.r.t. those logits (for `TransformerModel.backward`) and w.r.t. δ
// (the weight-decay term, the only one that sees δ directly). Log-softmax in f64 for stability.
import Foundation

public enum RomeLoss {
    /// One target token of a rewriting row: the logits row (index into the forward's `logitsAt`) that
    /// predicts it, and the token id.
    public struct Label: Sendable, Equatable {
        public var logitsRow: Int
        public var token: Int
        public init(logitsRow: Int, token: Int) { self.logitsRow = logitsRow; self.token = token }
    }

    /// The loss terms. `kl` is the raw KL (it enters `total` times `klFactor`).
    public struct Terms: Sendable, Equatable {
        public var nll: Float, kl: Float, wd: Float, total: Float
    }

    public struct Evaluation: Sendable {
        public var terms: Terms
        /// dTotal/dLogits: one [V] row per input logits row (zero rows where the loss does not look).
        public var dLogits: [[Float]]
        /// dWD/dδ = weightDecay · δ / (‖δ‖ · ‖m₀‖²), [C]; 0 at δ = 0 (as PyTorch's norm backward).
        public var dDelta: [Float]
    }

    /// Evaluates `total = NLL + klFactor · KL + WD`:
    /// NLL = mean over rewriting rows j of −(1/|labels[j]|) Σ log softmax(logits[label.logitsRow])[label.token];
    /// KL = Σ P_δ (log P_δ − log P₀) with P_δ = softmax(logits[klRow]); WD = weightDecay · ‖δ‖ / ‖m₀‖².
    /// - logits: the forward's logits rows, each [V]
    /// - labels: per rewriting row, its target tokens (non-empty)
    /// - klRow: index into `logits` of the KL prompt's subject position, or nil for no KL term
    /// - logP0: [V] log-probabilities at that position at δ = 0 (from `logSoftmax`); nil means P₀ = P_δ
    ///   (the first step: KL = 0 and gradient 0)
    /// - delta: [C] the current δ; m0Norm: ‖m₀‖, the unmodified MLP output's norm at (row 0, idx₀)
    public static func evaluate(logits: [[Float]], labels: [[Label]], klRow: Int?, logP0: [Float]?, delta: [Float],
                                m0Norm: Float, klFactor: Float = 0.0625, weightDecay: Float = 0.5) throws -> Evaluation {
        precondition(!labels.isEmpty && labels.allSatisfy { !$0.isEmpty }, "every rewriting row needs a target token")
        var dLogits = logits.map { [Float](repeating: 0, count: $0.count) }
        // Each logits row's label weights (a row may predict several labels), then one softmax pass per row.
        var weightsByRow: [Int: [(token: Int, weight: Double)]] = [:]
        for row in labels {
            for label in row {
                guard label.token >= 0 && label.token < logits[label.logitsRow].count else {
                    throw WilKEError.tokenOutOfRange(token: label.token, vocabSize: logits[label.logitsRow].count)
                }
                weightsByRow[label.logitsRow, default: []].append((label.token, 1 / Double(row.count * labels.count)))
            }
        }
        var nll = 0.0
        for r in weightsByRow.keys.sorted() { // a fixed order keeps the f64 sum reproducible
            let targets = weightsByRow[r]!
            let z = logits[r], lse = logSumExp(z)
            let total = targets.reduce(0) { $0 + $1.weight }
            // d(−Σ w log p_y)/dz = (Σ w) · softmax(z) − Σ w · onehot(y)
            z.withUnsafeBufferPointer { zp in
                dLogits[r].withUnsafeMutableBufferPointer { dp in
                    let (shift, scale) = (Float(lse), Float(total))
                    for v in 0..<zp.count { dp[v] = scale * expf(zp[v] - shift) }
                }
            }
            for (token, w) in targets {
                nll -= w * (Double(z[token]) - lse)
                dLogits[r][token] -= Float(w)
            }
        }

        var kl = 0.0
        if let klRow, let logP0 {
            let lp = logSoftmax64(logits[klRow])
            guard logP0.count == lp.count else { throw WilKEError.vectorSize(expected: lp.count, found: logP0.count) }
            for v in lp.indices { kl += exp(lp[v]) * (lp[v] - Double(logP0[v])) }
            // dKL/dz_v = P_v (log P_v − log P0_v − KL)
            for v in lp.indices {
                dLogits[klRow][v] += Float(Double(klFactor) * exp(lp[v]) * (lp[v] - Double(logP0[v]) - kl))
            }
        }

        let norm = delta.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
        let m0sq = Double(m0Norm) * Double(m0Norm)
        let wd = Double(weightDecay) * norm / m0sq
        let dDelta = norm > 0 ? delta.map { Float(Double(weightDecay) * Double($0) / (norm * m0sq)) }
                              : [Float](repeating: 0, count: delta.count)
        let total = nll + Double(klFactor) * kl + wd
        return Evaluation(terms: Terms(nll: Float(nll), kl: Float(kl), wd: Float(wd), total: Float(total)),
                          dLogits: dLogits, dDelta: dDelta)
    }

    /// Numerically stable log-softmax of one logits row ([V] → [V]).
    public static func logSoftmax(_ logits: [Float]) -> [Float] { logSoftmax64(logits).map { Float($0) } }

    static func logSoftmax64(_ z: [Float]) -> [Double] {
        let lse = logSumExp(z)
        return z.map { Double($0) - lse }
    }

    /// log Σ exp(z), shifted by the max, exponentials in f32 and their sum in f64.
    static func logSumExp(_ z: [Float]) -> Double {
        let mx = z.max() ?? 0
        var sum = 0.0
        z.withUnsafeBufferPointer { for x in $0 { sum += Double(expf(x - mx)) } }
        return Double(mx) + log(sum)
    }
}
