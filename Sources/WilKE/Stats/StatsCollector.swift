/// Accumulates Σ_t k_t k_tᵀ for several layers at once from packed forward passes (one pass per `add`,
/// every layer's keys taken from the same pass, ALGORITHM.md §2.5 "one pass for all layers").
///
/// Precision: each batch's Σ k kᵀ is computed by `ssyrk` in f32 (upper triangle, one [T, F] key block,
/// T = the batch's tokens) into a scratch matrix and immediately added into an f64 running sum. f32 only
/// sums T ≤ a few thousand products (relative error ~1e-6, far below the sampling noise of the estimate);
/// f64 carries the long sum over the whole corpus, where f32 would lose digits. f32 syrk is about twice
/// as fast as f64 syrk and needs no f64 copy of the keys.
public final class StatsCollector {
    public let model: TransformerModel
    /// Sorted, distinct.
    public let layers: [Int]
    /// Key width F.
    public let dim: Int
    /// Tokens accumulated so far (the same for every layer).
    public private(set) var count = 0
    /// Per layer in `layers` order: [F, F] row-major f64 running sums; only the upper triangle is kept.
    private var sums: [UnsafeMutablePointer<Double>]
    /// [F, F] f32 syrk output of the current batch.
    private let scratch: UnsafeMutablePointer<Float>

    public init(model: TransformerModel, layers: [Int]) throws {
        let sorted = Array(Set(layers)).sorted()
        for l in sorted where l < 0 || l >= model.config.nLayer { throw WilKEError.invalidLayer(l) }
        self.model = model
        self.layers = sorted
        dim = model.config.dFF
        let n = dim * dim
        sums = sorted.map { _ in
            let p = UnsafeMutablePointer<Double>.allocate(capacity: n)
            p.initialize(repeating: 0, count: n)
            return p
        }
        scratch = .allocate(capacity: n)
        scratch.initialize(repeating: 0, count: n)
    }

    deinit {
        for p in sums { p.deallocate() }
        scratch.deallocate()
    }

    /// Runs one packed forward pass over `sequences` (each row a whole document, no padding) and adds
    /// every token's key to every layer's sum.
    public func add(_ sequences: [[Int]]) throws {
        let rows = sequences.filter { !$0.isEmpty }
        guard !rows.isEmpty else { return }
        let f = dim
        let slot = Dictionary(uniqueKeysWithValues: layers.enumerated().map { ($1, $0) })
        var tokens = 0
        try model.captureKeys(rows, layers: layers) { layer, keys, t in
            tokens = t
            BLAS.ssyrkUpperAtA(n: f, k: t, a: keys, lda: f, beta: 0, c: scratch, ldc: f)
            let sum = sums[slot[layer]!]
            for i in 0..<f {
                let s = scratch + i * f, d = sum + i * f
                for j in i..<f { d[j] += Double(s[j]) }
            }
        }
        count += tokens
    }

    /// The moment Σ k kᵀ / count of `layer` as a full symmetric [F, F] row-major matrix.
    public func moment(layer: Int) throws -> [Double] {
        guard let i = layers.firstIndex(of: layer) else { throw WilKEError.invalidLayer(layer) }
        guard count > 0 else { throw WilKEError.emptyStatistics(layer: layer) }
        let f = dim, sum = sums[i], scale = 1 / Double(count)
        var m = [Double](repeating: 0, count: f * f)
        for r in 0..<f {
            for c in r..<f {
                let v = sum[r * f + c] * scale
                m[r * f + c] = v
                m[c * f + r] = v
            }
        }
        return m
    }

    /// The factored covariance of `layer` (see `KeyCovariance` for the ridge fallback).
    public func covariance(layer: Int) throws -> KeyCovariance {
        try KeyCovariance(layer: layer, count: count, moment: moment(layer: layer))
    }
}
