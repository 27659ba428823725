import Formats
import Foundation

/// A seeded, reproducible RNG (SplitMix64) so sampled context templates are the same run to run.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// How the next token is chosen from the last logits.
public enum Sampling: Sendable, Equatable {
    /// argmax (first maximum wins)
    case greedy
    /// softmax over the `k` largest logits, renormalised, one draw (ROME's context templates use k = 5)
    case topK(Int)
}

/// KV-cached incremental decoding: each step runs only the new token of each row against its cache.
public struct Generator {
    public let model: TransformerModel

    public init(model: TransformerModel) { self.model = model }

    /// Continues every prompt by up to `maxNewTokens` tokens, all rows in one batch per step. A row stops
    /// after emitting a token in `stopTokens` (that token is included). Returns the new tokens per row.
    public func generate(prompts: [[Int]], maxNewTokens: Int, sampling: Sampling = .greedy,
                         stopTokens: Set<Int> = [], rng: inout SeededGenerator) throws -> [[Int]] {
        guard !prompts.isEmpty, maxNewTokens > 0 else { return prompts.map { _ in [] } }
        if prompts.contains(where: \.isEmpty) { throw WilKEError.invalidBatch("a prompt is empty") }
        // Prefill: the whole prompts, keeping their caches and the logits of their last token.
        var batch = ForwardBatch(sequences: prompts,
                                 logitsAt: prompts.enumerated().map { TokenPosition(row: $0, pos: $1.count - 1) })
        batch.returnKV = true
        let first = try model.forward(batch)
        var logits = first.logits
        var caches = first.kv
        var out = prompts.map { _ in [Int]() }
        var active = Array(prompts.indices)
        while true {
            var next: [Int] = []
            for (i, r) in active.enumerated() {
                let t = pick(logits[i], sampling, &rng)
                out[r].append(t)
                next.append(t)
            }
            // Rows still running: not stopped, under the budget, and (GPT-2) inside the position table.
            let keep = active.indices.filter { i in
                let r = active[i]
                return !stopTokens.contains(next[i]) && out[r].count < maxNewTokens
                    && (!model.engine.traits.learnedPositions || caches[r].count + 1 <= model.config.maxPositions)
            }
            if keep.isEmpty { break }
            active = keep.map { active[$0] }
            // decodeStep appends to the caches in place; moving them out of `caches` first keeps each
            // uniquely referenced, so nothing is copied (a batch holding them would copy every step).
            var kv = active.map { caches[$0] }
            for r in active { caches[r] = KVCache(nLayer: 0, kvDim: 0) }
            logits = try model.decodeStep(keep.map { [next[$0]] }, &kv)
            for (i, r) in active.enumerated() { caches[r] = kv[i] }
        }
        return out
    }

    func pick(_ logits: [Float], _ sampling: Sampling, _ rng: inout SeededGenerator) -> Int {
        switch sampling {
        case .greedy:
            var best = 0
            for i in logits.indices where logits[i] > logits[best] { best = i }
            return best
        case .topK(let k):
            let top = logits.indices.sorted { logits[$0] > logits[$1] || (logits[$0] == logits[$1] && $0 < $1) }
                .prefix(max(1, min(k, logits.count)))
            let m = logits[top.first!]
            let w = top.map { Double(logits[$0] - m) }.map { exp($0) }
            var u = Double.random(in: 0..<1, using: &rng) * w.reduce(0, +)
            for (i, t) in top.enumerated() {
                u -= w[i]
                if u < 0 { return t }
            }
            return top.last!
        }
    }
}
