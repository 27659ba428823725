/// Accumulates Σ_t k_t k_tᵀ for several layers at once from packed forward passes (one pass per `add`,
/// every layer's keys taken from the same pass, ALGORITHM.md §2.5 "one pass for all layers").
///
/// Precision: each batch's Σ k kᵀ is computed in f32 by sgemm, a panel of `panelRows` rows of its upper
/// triangle at a time (keys[:, i..<i+P]ᵀ · keys[:, i..<F], T = the batch's tokens) and immediately added
/// into an f64 running sum. f32 only sums T ≤ a few thousand products (relative error ~1e-6, far below
/// the sampling noise of the estimate); f64 carries the long sum over the whole corpus, where f32 would
/// lose digits.
///
/// Memory: each layer's sum is a packed f64 triangle (F(F+1)/2 values: 0.77 GiB for F = 14,336) and the
/// f32 scratch is one panel [P, F], not an [F, F] matrix.
public final class StatsCollector {
    public let model: TransformerModel
    /// Sorted, distinct.
    public let layers: [Int]
    /// Key width F.
    public let dim: Int
    /// Tokens accumulated so far (the same for every layer).
    public private(set) var count = 0
    /// Per layer in `layers` order: packed f64 running sums of the upper triangle (row i: columns i..<F);
    /// nil once handed out by `takePackedMoment` (an array, so it is handed out without a copy).
    private var sums: [[Double]?]
    /// [P, F] f32 Gram panel of the current batch.
    private let scratch: UnsafeMutablePointer<Float>
    /// Rows of the Gram matrix per sgemm: wide enough for sgemm speed, small next to F².
    static let panelRows = 128

    public init(model: TransformerModel, layers: [Int]) throws {
        let sorted = Array(Set(layers)).sorted()
        for l in sorted where l < 0 || l >= model.config.nLayer { throw WilKEError.invalidLayer(l) }
        self.model = model
        self.layers = sorted
        dim = model.config.dFF
        let n = dim * (dim + 1) / 2
        sums = sorted.map { _ in [Double](repeating: 0, count: n) }
        let panel = min(Self.panelRows, dim) * dim
        scratch = .allocate(capacity: panel)
        scratch.initialize(repeating: 0, count: panel)
    }

    deinit { scratch.deallocate() }

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
            let index = slot[layer]!
            guard sums[index] != nil else { throw WilKEError.invalidLayer(layer) }
            sums[index]!.withUnsafeMutableBufferPointer { buf in
                let sum = buf.baseAddress!
                var i0 = 0
                while i0 < f {
                    let p = min(Self.panelRows, f - i0), w = f - i0
                    // G[i0..<i0+p, i0..<F] = K[:, i0..<i0+p]ᵀ K[:, i0..<F]  (K = keys [T, F])
                    BLAS.sgemm(transA: true, transB: false, m: p, n: w, k: t, a: keys + i0, lda: f, b: keys + i0, ldb: f,
                               beta: 0, c: scratch, ldc: w)
                    for r in 0..<p {
                        let i = i0 + r, s = scratch + r * w + r, d = sum + KeyCovariance.diagonalIndex(i, f)
                        for j in 0..<(f - i) { d[j] += Double(s[j]) }
                    }
                    i0 += p
                }
            }
        }
        count += tokens
    }

    /// The moment Σ k kᵀ / count of `layer` as its packed upper triangle (row i: columns i..<F).
    public func packedMoment(layer: Int) throws -> [Double] {
        guard let i = layers.firstIndex(of: layer), let sum = sums[i] else { throw WilKEError.invalidLayer(layer) }
        guard count > 0 else { throw WilKEError.emptyStatistics(layer: layer) }
        let scale = 1 / Double(count)
        return sum.map { $0 * scale }
    }

    /// `packedMoment` made from the layer's running sum in place (no further `add` may run): the
    /// statistics pipeline never holds the sum and the moment at once.
    public func takePackedMoment(layer: Int) throws -> [Double] {
        guard let i = layers.firstIndex(of: layer), var m = sums[i] else { throw WilKEError.invalidLayer(layer) }
        guard count > 0 else { throw WilKEError.emptyStatistics(layer: layer) }
        sums[i] = nil  // `m` is now the only reference: scaled without a copy
        let scale = 1 / Double(count)
        m.withUnsafeMutableBufferPointer { for j in $0.indices { $0[j] *= scale } }
        return m
    }

    /// The moment Σ k kᵀ / count of `layer` as a full symmetric [F, F] row-major matrix (tests).
    public func moment(layer: Int) throws -> [Double] {
        let p = try packedMoment(layer: layer), f = dim
        var m = [Double](repeating: 0, count: f * f)
        var o = 0
        for r in 0..<f {
            for c in r..<f { m[r * f + c] = p[o]; m[c * f + r] = p[o]; o += 1 }
        }
        return m
    }

    /// The factored covariance of `layer`, moment kept (see `KeyCovariance` for the ridge fallback).
    public func covariance(layer: Int) throws -> KeyCovariance {
        try KeyCovariance(layer: layer, count: count, packed: packedMoment(layer: layer), keepMoment: true)
    }
}
