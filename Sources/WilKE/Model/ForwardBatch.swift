/// A token in a batch: row index and ABSOLUTE position in that row (counting any cached prefix).
public struct TokenPosition: Hashable, Sendable {
    public var row: Int
    public var pos: Int
    public init(row: Int, pos: Int) { self.row = row; self.pos = pos }
}

/// An additive intervention: `vector` [C] is added at each of `at` after `layer`'s MLP (ROME) or
/// after block `layer` (MEMIT). Positions before a row's prefix end cannot be touched (they are cached).
public struct Intervention: Sendable {
    public var layer: Int
    public var vector: [Float]
    public var at: [TokenPosition]
    public init(layer: Int, vector: [Float], at: [TokenPosition]) { self.layer = layer; self.vector = vector; self.at = at }
}

/// Keys and values of every layer for the first `count` positions of one row (causal-prefix reuse and
/// incremental decoding). Positions < count never need recomputing: attention is causal.
public struct KVCache: Sendable {
    public internal(set) var count: Int
    /// Per layer: [count, G·D] after RoPE.
    var k: [[Float]]
    /// Per layer: [count, G·D].
    var v: [[Float]]
    let kvDim: Int

    public init(nLayer: Int, kvDim: Int) {
        count = 0; self.kvDim = kvDim
        k = Array(repeating: [], count: nLayer); v = k
    }

    /// The cache of the first `n` positions (e.g. a prompt cut just before ROME's subject token).
    public func prefix(_ n: Int) -> KVCache {
        precondition(n >= 0 && n <= count)
        var out = self
        out.count = n
        out.k = k.map { Array($0.prefix(n * kvDim)) }
        out.v = v.map { Array($0.prefix(n * kvDim)) }
        return out
    }
}

/// The residual stream entering `layer` for each row's computed positions (packed, row-major [T, C]).
/// Resuming from it skips the embedding and layers below `layer` (ROME: they do not depend on δ).
public struct ResidualCache: Sendable {
    public let layer: Int
    /// Absolute position of each row's first cached entry (= the row's KV prefix length at capture time).
    public let starts: [Int]
    public let lengths: [Int]
    /// [Σ lengths, C]
    public var values: [Float]
    public let width: Int

    public init(layer: Int, starts: [Int], lengths: [Int], values: [Float], width: Int) {
        precondition(starts.count == lengths.count && values.count == lengths.reduce(0, +) * width)
        self.layer = layer; self.starts = starts; self.lengths = lengths; self.values = values; self.width = width
    }

    /// Keeps, per row, only the positions ≥ `from[row]` (absolute), to pair with `KVCache.prefix(from[row])`.
    public func suffix(from: [Int]) -> ResidualCache {
        precondition(from.count == lengths.count)
        var vals: [Float] = [], newStarts: [Int] = [], newLengths: [Int] = []
        var offset = 0
        for r in 0..<lengths.count {
            precondition(from[r] >= starts[r] && from[r] <= starts[r] + lengths[r])
            let skip = from[r] - starts[r]
            vals += values[(offset + skip) * width ..< (offset + lengths[r]) * width]
            newStarts.append(from[r]); newLengths.append(lengths[r] - skip)
            offset += lengths[r]
        }
        return ResidualCache(layer: layer, starts: newStarts, lengths: newLengths, values: vals, width: width)
    }
}

/// One packed forward call: rows keep their true lengths (no padding).
public struct ForwardBatch: Sendable {
    /// Tokens to compute per row: positions `prefix.count ..< prefix.count + sequences[r].count`.
    public var sequences: [[Int]]
    /// Cached keys/values per row (empty array = no prefixes); a row's new tokens continue after it.
    public var prefixes: [KVCache?] = []
    /// Where to compute logits; `ForwardResult.logits` follows this order.
    public var logitsAt: [TokenPosition] = []
    /// Layers at which to record the MLP key (input of the down projection) and MLP output at `taps`.
    public var tapLayers: [Int] = []
    public var taps: [TokenPosition] = []
    /// ROME: added to the MLP output of `layer` (taps of that layer record the sum).
    public var mlpDelta: Intervention?
    /// MEMIT: added to the residual stream after block `layer` (`layer == resume.layer - 1` adds it to
    /// the resumed residual; -1 means after the embedding).
    public var residualDelta: Intervention?
    /// Start from this residual stream at layer `resume.layer` instead of the embedding. The rows'
    /// starts and lengths must match `prefixes` and `sequences` (tokens are then unused).
    public var resume: ResidualCache?
    /// Record the residual stream entering this layer (0...nLayer; nLayer = before the final norm).
    public var cacheResidualAt: Int?
    /// Return each row's KV cache (prefix + new positions); needs `resume == nil`.
    public var returnKV = false

    public init(sequences: [[Int]], logitsAt: [TokenPosition] = []) {
        self.sequences = sequences
        self.logitsAt = logitsAt
    }

    /// Logits at every position of every row, row by row.
    public static func allLogits(_ sequences: [[Int]]) -> ForwardBatch {
        ForwardBatch(sequences: sequences, logitsAt: sequences.enumerated().flatMap { r, s in
            s.indices.map { TokenPosition(row: r, pos: $0) }
        })
    }
}

/// Outputs of `TransformerModel.forward`.
public struct ForwardResult: Sendable {
    /// One [V] row per `logitsAt` entry, in order.
    public var logits: [[Float]] = []
    /// Per tap layer: one [F] key per `taps` entry, in order.
    public var keys: [Int: [[Float]]] = [:]
    /// Per tap layer: one [C] MLP output per `taps` entry, in order.
    public var mlpOut: [Int: [[Float]]] = [:]
    /// The residual stream entering `cacheResidualAt`, if requested.
    public var residual: ResidualCache?
    /// Per row, if `returnKV`.
    public var kv: [KVCache] = []
}
