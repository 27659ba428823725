import Foundation

/// The default statistics corpus: documents sampled from the model itself (no dataset download; ROME's
/// 44 M Wikipedia tokens are out of reach on a CPU, and ~10·d_k tokens suffice, arXiv 2506.04226).
///
/// Recipe v1 (bump `recipeVersion` when anything here changes: it is part of the cache key):
/// - document i starts with `starts[i % starts.count]`; the CLI uses MEMIT's start words
///   "The", "Therefore", "Because", "I", "You", each encoded with the model's special-token rule
///   (BOS prepended when the model adds one; otherwise "<|endoftext|>" when that is one special token);
/// - `rowsPerBatch` = 64 documents are decoded in lockstep with a KV cache (many rows per step: with few
///   rows each step is bound by sgemm packing the weights, not by arithmetic); each step draws every row's next
///   token from the softmax (temperature 1) over the `topK` = 50 largest logits, renormalised, rows in
///   order, all draws from one `SeededGenerator(seed)`; ties between equal logits go to the lower id;
/// - a document ends after an end token (kept) or at `maxLength` tokens (start tokens included);
/// - sampling stops as soon as the documents hold `tokens` tokens; the last one is cut to fit exactly.
public struct TextSampler {
    public static let recipeVersion = 1
    public static let topK = 50
    public static let startWords = ["The", "Therefore", "Because", "I", "You"]

    public let model: TransformerModel
    public let starts: [[Int]]
    public let endTokens: Set<Int>
    public let maxLength: Int
    /// Part of the recipe (it fixes the order of the random draws): `StatsCorpus.identity()` assumes 64.
    public var rowsPerBatch = 64

    public init(model: TransformerModel, starts: [[Int]], endTokens: Set<Int>, maxLength: Int) {
        precondition(!starts.isEmpty && !starts.contains(where: \.isEmpty) && maxLength > 0)
        self.model = model
        self.starts = starts
        self.endTokens = endTokens
        self.maxLength = maxLength
    }

    /// The start prompts of recipe v1 for `tokenizer`.
    public static func defaultStarts(_ tokenizer: any Tokenizer) -> [[Int]] {
        // A model that adds no BOS gets the "<|endoftext|>" document separator in front when it has one as
        // a single special token (GPT-2, SmolLM2): ROME samples its templates from "<|endoftext|>" too.
        let separator = tokenizer.encode("<|endoftext|>", addSpecial: false)
        let lead = !tokenizer.addsBOS && separator.count == 1 && tokenizer.decode(separator) == "<|endoftext|>" ? separator : []
        return startWords.map { lead + tokenizer.encode($0, addSpecial: true) }.filter { !$0.isEmpty }
    }

    /// Samples documents holding exactly `tokens` tokens in total.
    /// - progress: called with the tokens sampled so far; throwing from it aborts sampling.
    public func documents(tokens budget: Int, seed: UInt64,
                          progress: (Int) throws -> Void = { _ in }) throws -> [[Int]] {
        var rng = SeededGenerator(seed: seed)
        var docs: [[Int]] = []
        var total = 0
        while total < budget {
            let prompts = (0..<rowsPerBatch).map { Array(starts[(docs.count + $0) % starts.count].prefix(maxLength)) }
            var rows = prompts
            total += prompts.reduce(0) { $0 + $1.count }
            var caches = prompts.map { _ in KVCache(nLayer: model.config.nLayer, kvDim: model.config.kvDim) }
            var logits = try model.decodeStep(prompts, &caches)
            var active = rows.indices.filter { rows[$0].count < maxLength }
            while total < budget && !active.isEmpty {
                var next: [Int] = []
                for r in active {
                    let t = Self.sampleTopK(logits[r], k: Self.topK, &rng)
                    rows[r].append(t)
                    next.append(t)
                }
                total += active.count
                try progress(min(total, budget))
                let keep = active.indices.filter { !endTokens.contains(next[$0]) && rows[active[$0]].count < maxLength }
                if keep.isEmpty || total >= budget { break }
                active = keep.map { active[$0] }
                // Move the running rows' caches out (unique references: appended in place), step, move back.
                var kv = active.map { caches[$0] }
                for r in active { caches[r] = KVCache(nLayer: 0, kvDim: 0) }
                let out = try model.decodeStep(keep.map { [next[$0]] }, &kv)
                for (i, r) in active.enumerated() { caches[r] = kv[i]; logits[r] = out[i] }
            }
            docs += rows
        }
        // Cut to exactly `budget` tokens, keeping document order.
        var out: [[Int]] = [], kept = 0
        for d in docs where kept < budget {
            let take = min(d.count, budget - kept)
            out.append(Array(d.prefix(take)))
            kept += take
        }
        try progress(kept)
        return out
    }

    /// One draw from the softmax over the `k` largest logits (ties to the lower id), in one pass over V.
    static func sampleTopK(_ logits: [Float], k: Int, _ rng: inout SeededGenerator) -> Int {
        let k = max(1, min(k, logits.count))
        // `top` stays sorted by (logit desc, id asc); a later id must be strictly larger to enter.
        var top: [(Float, Int)] = []
        top.reserveCapacity(k + 1)
        for (i, v) in logits.enumerated() {
            if top.count == k, v <= top[k - 1].0 { continue }
            var j = top.count
            while j > 0 && top[j - 1].0 < v { j -= 1 }
            top.insert((v, i), at: j)
            if top.count > k { top.removeLast() }
        }
        let m = top[0].0
        let w = top.map { Double(exp($0.0 - m)) }
        var u = Double.random(in: 0..<1, using: &rng) * w.reduce(0, +)
        for (i, t) in top.enumerated() {
            u -= w[i]
            if u < 0 { return t.1 }
        }
        return top[top.count - 1].1
    }
}
