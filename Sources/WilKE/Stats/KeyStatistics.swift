import Formats
import Foundation

/// What `KeyStatistics.compute` should produce.
public struct StatsOptions: Sendable {
    /// Layers whose statistics are wanted (computed together in one pass when missing).
    public var layers: [Int]
    public var corpus: StatsCorpus = .sampled(seed: 0)
    /// Token budget; nil: `KeyStatistics.defaultTokens(for:)`.
    public var tokens: Int?
    /// Documents are cut to this many tokens (and to the model's positions).
    public var maxLength = 256
    /// Tokens per forward pass (whole documents are packed until the next would overflow it).
    public var batchTokens = 2048
    /// Recompute and overwrite even when a valid cache file exists.
    public var force = false
    /// Keep each C beside its factor (`KeyCovariance.moment`); off, only the factor stays in memory.
    public var keepMoment = false

    public init(layers: [Int]) { self.layers = layers }
}

/// Progress callbacks: sampling the default corpus (tokens sampled) then the statistics pass (tokens done).
public struct StatsProgress: Sendable {
    public enum Phase: String, Sendable { case sampling, collecting }
    public var phase: Phase
    public var done: Int
    public var total: Int
}

/// One layer's result.
public struct LayerStats: Sendable {
    public let covariance: KeyCovariance
    public let key: StatsKey
    public let path: String
    /// True when read from the cache.
    public let cached: Bool
    /// Why an existing cache file was not used (corrupt, truncated, ...), if one was rejected.
    public let rejected: String?
}

/// Key second moments for ROME/WilKE (ALGORITHM.md §2.5): cached per (model fingerprint, layer, corpus,
/// token budget, max length), computed in one forward pass for every missing layer.
public enum KeyStatistics {
    /// ~10·d_k tokens suffice (arXiv 2506.04226); we take 10·F rounded up to a multiple of 1024
    /// (15,360 for SmolLM2's F = 1536). ROME used ~44 M Wikipedia tokens, out of reach on a CPU.
    public static func defaultTokens(for config: ModelConfig) -> Int {
        (10 * config.dFF + 1023) / 1024 * 1024
    }

    /// The statistics of `options.layers`: cached files when valid, the rest computed together and stored.
    /// - fingerprint: per-layer model identity (`ModelFingerprint`), chosen by the caller.
    /// - tokenizer: encodes a corpus file and the sampling start words.
    /// - progress: throwing from it aborts the run before anything is written (no cache entry changes).
    public static func compute(model: TransformerModel, tokenizer: any Tokenizer, fingerprint: ModelFingerprint,
                               options: StatsOptions, cache: StatsCache,
                               progress: (StatsProgress) throws -> Void = { _ in }) throws -> [LayerStats] {
        try withoutActuallyEscaping(progress) { progress in
            let (budget, documents) = corpus(model: model, tokenizer: tokenizer, options: options, progress: progress)
            return try compute(model: model, fingerprint: fingerprint, corpusID: try options.corpus.identity(),
                               budget: budget, options: options, cache: cache, documents: documents, progress: progress)
        }
    }

    /// `compute` for a caller that loads one layer's factor at a time later (`StatsCache.covariance`): cached
    /// files are checked (read and checksummed, not factored), the missing or rejected ones computed and
    /// stored, and no factor stays in memory. An 8B-shaped edit then holds one 0.77 GiB triangle only while
    /// it solves, not through the δ optimization; a 15-layer scan never holds 15 of them.
    /// - Returns: the cache key of each of `options.layers`, ascending.
    public static func prepare(model: TransformerModel, tokenizer: any Tokenizer, fingerprint: ModelFingerprint,
                               options: StatsOptions, cache: StatsCache,
                               progress: (StatsProgress) throws -> Void = { _ in }) throws -> [StatsKey] {
        try withoutActuallyEscaping(progress) { progress in
            let (budget, documents) = corpus(model: model, tokenizer: tokenizer, options: options, progress: progress)
            return try prepare(model: model, fingerprint: fingerprint, corpusID: try options.corpus.identity(),
                               budget: budget, options: options, cache: cache, documents: documents, progress: progress)
        }
    }

    /// `prepare` over token documents from `documents` (called only when some layer must be computed).
    public static func prepare(model: TransformerModel, fingerprint: ModelFingerprint, corpusID: String, budget: Int,
                               options: StatsOptions, cache: StatsCache, documents: () throws -> [[Int]],
                               progress: (StatsProgress) throws -> Void = { _ in }) throws -> [StatsKey] {
        let keys = try statsKeys(model.config, fingerprint, corpusID: corpusID, budget: budget, options: options)
        let invalid = options.force ? keys : keys.filter { key in
            do { _ = try cache.readPacked(key); return false } catch { return true }
        }
        if !invalid.isEmpty {
            var missing = options
            missing.layers = invalid.map(\.layer)
            _ = try compute(model: model, fingerprint: fingerprint, corpusID: corpusID, budget: budget, options: missing,
                            cache: cache, documents: documents, progress: progress)
        }
        return keys
    }

    /// The token budget and the documents of `options.corpus` (a file, or text the model samples).
    private static func corpus(model: TransformerModel, tokenizer: any Tokenizer, options: StatsOptions,
                               progress: @escaping (StatsProgress) throws -> Void) -> (Int, () throws -> [[Int]]) {
        let budget = options.tokens ?? defaultTokens(for: model.config)
        let maxLength = effectiveMaxLength(options.maxLength, model.config)
        return (budget, {
            switch options.corpus {
            case .file(let path):
                let docs = try CorpusReader.documents(path: path)
                return cut(docs.lazy.map { tokenizer.encode($0, addSpecial: true) }, budget: budget, maxLength: maxLength)
            case .sampled(let seed):
                let sampler = TextSampler(model: model, starts: TextSampler.defaultStarts(tokenizer),
                                          endTokens: Set([tokenizer.eosID].compactMap { $0 }), maxLength: maxLength)
                return try sampler.documents(tokens: budget, seed: seed) {
                    try progress(StatsProgress(phase: .sampling, done: $0, total: budget))
                }
            }
        })
    }

    /// The cache key of each of `options.layers` (deduplicated, ascending); throws for a layer out of range.
    private static func statsKeys(_ cfg: ModelConfig, _ fingerprint: ModelFingerprint, corpusID: String, budget: Int,
                                  options: StatsOptions) throws -> [StatsKey] {
        guard fingerprint.layers.count == cfg.nLayer else {
            throw WilKEError.invalidConfig("the fingerprint has \(fingerprint.layers.count) layers, the model \(cfg.nLayer)")
        }
        let layers = Array(Set(options.layers)).sorted()
        for l in layers where l < 0 || l >= cfg.nLayer { throw WilKEError.invalidLayer(l) }
        let maxLength = effectiveMaxLength(options.maxLength, cfg)
        return layers.map {
            StatsKey(layer: $0, fingerprint: fingerprint.layers[$0], corpus: corpusID, tokens: budget, maxLength: maxLength)
        }
    }

    /// `compute` over token documents from `documents` (called only when some layer must be computed).
    public static func compute(model: TransformerModel, fingerprint: ModelFingerprint, corpusID: String, budget: Int,
                               options: StatsOptions, cache: StatsCache, documents: () throws -> [[Int]],
                               progress: (StatsProgress) throws -> Void = { _ in }) throws -> [LayerStats] {
        let cfg = model.config
        let maxLength = effectiveMaxLength(options.maxLength, cfg)
        let keys = try statsKeys(cfg, fingerprint, corpusID: corpusID, budget: budget, options: options)
        var found: [Int: LayerStats] = [:], rejected: [Int: String] = [:]
        if !options.force {
            for key in keys {
                switch cache.load(key, keepMoment: options.keepMoment) {
                case .hit(let cov):
                    found[key.layer] = LayerStats(covariance: cov, key: key, path: cache.path(for: key), cached: true, rejected: nil)
                case .rejected(let why): rejected[key.layer] = why
                case .missing: break
                }
            }
        }
        let missing = keys.filter { found[$0.layer] == nil }
        if !missing.isEmpty {
            let docs = cut(try documents(), budget: budget, maxLength: maxLength)
            // One packed f64 sum per layer: refuse up front rather than run out of memory mid-pass.
            let need = UInt64(missing.count) * UInt64(cfg.dFF) * UInt64(cfg.dFF + 1) * 4
            let have = ProcessInfo.processInfo.physicalMemory
            if need > have / 4 * 3 {
                throw WilKEError.statisticsTooLarge(layers: missing.count, needed: need, available: have)
            }
            let collector = try StatsCollector(model: model, layers: missing.map(\.layer))
            try collect(collector, docs, batchTokens: min(options.batchTokens, batchTokenLimit(cfg))) {
                try progress(StatsProgress(phase: .collecting, done: $0, total: $1))
            }
            // Everything is computed before the first write: an interruption above leaves the cache as it was.
            // Each layer's sum is freed as its file is written; the triangle is then factored in place
            // (a ridge retry re-reads the file), so one triangle per layer stays in memory.
            for key in missing {
                let packed = try collector.takePackedMoment(layer: key.layer)
                let path = try cache.store(packed: packed, count: collector.count, key: key)
                let cov = try KeyCovariance(layer: key.layer, count: collector.count, packed: consume packed,
                                            keepMoment: options.keepMoment, reload: { try cache.readPacked(key).values })
                try cache.storeFactor(cov, key: key)
                found[key.layer] = LayerStats(covariance: cov, key: key, path: path, cached: false, rejected: rejected[key.layer])
            }
        }
        return keys.map { found[$0.layer]! }
    }

    /// Feeds `docs` to `collector` in packed batches of at most `batchTokens` tokens (a longer document
    /// gets a batch of its own). - progress: (tokens done, tokens total)
    public static func collect(_ collector: StatsCollector, _ docs: [[Int]], batchTokens: Int,
                               progress: (Int, Int) throws -> Void = { _, _ in }) throws {
        let total = docs.reduce(0) { $0 + $1.count }
        var batch: [[Int]] = [], size = 0, done = 0
        try progress(0, total)
        func flush() throws {
            guard !batch.isEmpty else { return }
            try collector.add(batch)
            done += size
            batch = []; size = 0
            try progress(done, total)
        }
        for d in docs where !d.isEmpty {
            if size + d.count > batchTokens { try flush() }
            batch.append(d); size += d.count
        }
        try flush()
    }

    /// Documents cut to `maxLength` tokens, taken in order until `budget` tokens (the last one cut to fit).
    static func cut<S: Sequence>(_ docs: S, budget: Int, maxLength: Int) -> [[Int]] where S.Element == [Int] {
        var out: [[Int]] = [], total = 0
        for d in docs {
            guard total < budget else { break }
            let take = min(d.count, maxLength, budget - total)
            if take > 0 { out.append(Array(d.prefix(take))); total += take }
        }
        return out
    }

    /// Tokens per statistics pass such that one block's activations stay within 256 MiB (about
    /// 11·C + 3·F floats per token): SmolLM2 keeps its 2048, an 8B-shaped model gets ~730.
    static func batchTokenLimit(_ cfg: ModelConfig) -> Int {
        max(64, (256 << 20) / (4 * (11 * cfg.dModel + 3 * cfg.dFF)))
    }

    static func effectiveMaxLength(_ requested: Int, _ cfg: ModelConfig) -> Int {
        max(1, min(requested, cfg.maxPositions))
    }
}
