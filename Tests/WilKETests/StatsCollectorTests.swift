import Foundation
import Testing
import TestSupport
@testable import WilKE

/// Random token documents for a fixture model (lengths 3...maxLen).
func randomDocs(_ count: Int, vocab: Int, maxLen: Int, seed: UInt64) -> [[Int]] {
    var rng = SeededGenerator(seed: seed)
    return (0..<count).map { _ in (0..<Int.random(in: 3...maxLen, using: &rng)).map { _ in Int.random(in: 0..<vocab, using: &rng) } }
}

/// Σ k kᵀ / N in f64 from the engine's ordinary taps at every position: the naive reference.
func naiveMoments(_ model: TransformerModel, _ docs: [[Int]], layers: [Int]) throws -> [Int: [Double]] {
    var batch = ForwardBatch(sequences: docs)
    batch.tapLayers = layers
    batch.taps = docs.enumerated().flatMap { r, d in d.indices.map { TokenPosition(row: r, pos: $0) } }
    let out = try model.forward(batch)
    let f = model.config.dFF, n = Double(batch.taps.count)
    var result: [Int: [Double]] = [:]
    for l in layers {
        var m = [Double](repeating: 0, count: f * f)
        for k in out.keys[l]! { for i in 0..<f { for j in 0..<f { m[i * f + j] += Double(k[i]) * Double(k[j]) } } }
        result[l] = m.map { $0 / n }
    }
    return result
}

func maxAbs(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).reduce(0) { max($0, abs($1.0 - $1.1)) } }

@Suite struct StatsCollectorTests {
    /// The one-pass moment of every layer equals the naive Σkkᵀ/N from taps (all four families).
    @Test(arguments: fixtureArchs) func momentMatchesNaiveTaps(arch: String) throws {
        let fx = try FixtureModel(arch)
        let docs = randomDocs(12, vocab: fx.config.vocabSize, maxLen: 30, seed: 7)  // GPT-2 fixture: 32 positions
        let layers = Array(0..<fx.config.nLayer)
        let naive = try naiveMoments(fx.model, docs, layers: layers)
        let c = try StatsCollector(model: fx.model, layers: layers)
        try KeyStatistics.collect(c, docs, batchTokens: 64)
        #expect(c.count == docs.reduce(0) { $0 + $1.count })
        for l in layers {
            let m = try c.moment(layer: l), ref = naive[l]!
            let scale = ref.map(abs).max()!
            let d = maxAbs(m, ref)
            print("\(arch) layer \(l): moment vs naive taps max abs diff \(d) (max |C| \(scale), N \(c.count))")
            #expect(d <= 1e-5 * scale)
            // Exactly symmetric.
            let f = c.dim
            #expect((0..<f).allSatisfy { i in (0..<f).allSatisfy { m[i * f + $0] == m[$0 * f + i] } })
        }
    }

    /// All layers in one pass give bit-identical moments to one pass per layer.
    @Test func multiLayerEqualsPerLayer() throws {
        let fx = try FixtureModel("llama")
        let docs = randomDocs(10, vocab: fx.config.vocabSize, maxLen: 30, seed: 3)
        let both = try StatsCollector(model: fx.model, layers: [1, 0])
        try KeyStatistics.collect(both, docs, batchTokens: 100)
        #expect(both.layers == [0, 1])
        for l in [0, 1] {
            let one = try StatsCollector(model: fx.model, layers: [l])
            try KeyStatistics.collect(one, docs, batchTokens: 100)
            #expect(try one.moment(layer: l) == both.moment(layer: l))
        }
    }

    /// Packing documents differently (batch size) only changes rounding.
    @Test func batchingDoesNotChangeTheMoment() throws {
        let fx = try FixtureModel("gpt2")
        let docs = randomDocs(10, vocab: fx.config.vocabSize, maxLen: 30, seed: 5)
        let small = try StatsCollector(model: fx.model, layers: [1]), big = try StatsCollector(model: fx.model, layers: [1])
        try KeyStatistics.collect(small, docs, batchTokens: 1)
        try KeyStatistics.collect(big, docs, batchTokens: 10_000)
        let a = try small.moment(layer: 1), b = try big.moment(layer: 1)
        print("batch 1 vs all-in-one max abs diff \(maxAbs(a, b))")
        #expect(maxAbs(a, b) <= 1e-6 * a.map(abs).max()!)
    }

    /// solve(k) = C⁻¹k: C·x reproduces k, for a well-sampled (no ridge) layer.
    @Test func solveSatisfiesTheSystem() throws {
        let fx = try FixtureModel("llama")
        let c = try StatsCollector(model: fx.model, layers: [0, 1])
        try KeyStatistics.collect(c, randomDocs(20, vocab: fx.config.vocabSize, maxLen: 60, seed: 11), batchTokens: 256)
        for l in [0, 1] {
            let cov = try c.covariance(layer: l)
            #expect(cov.ridge == 0 && cov.count > cov.dim)
            var rng = SeededGenerator(seed: 1)
            let k = (0..<cov.dim).map { _ in Float.random(in: -1...1, using: &rng) }
            let x = try cov.solve(k)
            let back = cov.multiply(x)
            let resid = maxAbs(back, k.map(Double.init))
            print("layer \(l): |C x - k|∞ = \(resid), trace \(cov.trace), cond ≥ \(cov.conditionEstimate)")
            #expect(resid <= 1e-9)
            #expect(throws: WilKEError.vectorSize(expected: cov.dim, found: 3)) { try cov.solve([1, 2, 3] as [Float]) }
        }
    }

    /// Fewer tokens than key units (rank-deficient C) and a dead key unit both take the ridge path,
    /// and solve then satisfies (C + λI) x = k.
    @Test func ridgeFallback() throws {
        let fx = try FixtureModel("llama")
        let c = try StatsCollector(model: fx.model, layers: [0])
        try c.add([[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]])
        let cov = try c.covariance(layer: 0)
        print("10 tokens for \(cov.dim) units: ridge \(cov.ridge)")
        #expect(cov.ridge > 0)

        // Identity with one dead unit (zero row and column).
        let n = 6
        var m = [Double](repeating: 0, count: n * n)
        for i in 0..<(n - 1) { m[i * n + i] = 2 }
        let dead = try KeyCovariance(layer: 3, count: 100, moment: m)
        #expect(dead.ridge > 0)
        let k: [Double] = [1, 2, 3, 4, 5, 0]
        let x = try dead.solve(k)
        let back = zip(dead.multiply(x), x).map { $0 + dead.ridge * $1 }
        #expect(maxAbs(back, k) <= 1e-9)
        // Factored in place without keeping C, the retries re-read it: the same factor, the same solve.
        var packed = [Double]()
        for i in 0..<n { packed += m[(i * n + i)..<(i * n + n)] }
        var reloads = 0
        let inPlace = try KeyCovariance(layer: 3, count: 100, packed: packed, keepMoment: false,
                                        reload: { reloads += 1; return packed })
        #expect(inPlace.packedMoment == nil && reloads > 0)
        #expect(inPlace.ridge == dead.ridge && inPlace.factor == dead.factor && inPlace.diagonal == dead.diagonal)
        #expect(try inPlace.solve(k) == x)
        // A positive definite matrix needs none.
        for i in 0..<n { m[i * n + i] = 2 }
        #expect(try KeyCovariance(layer: 3, count: 100, moment: m).ridge == 0)
        #expect(throws: WilKEError.emptyStatistics(layer: 0)) { try StatsCollector(model: fx.model, layers: [0]).covariance(layer: 0) }
        #expect(throws: WilKEError.invalidLayer(2)) { try StatsCollector(model: fx.model, layers: [2]) }
    }
}
