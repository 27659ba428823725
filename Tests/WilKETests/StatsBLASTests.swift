import Foundation
import Testing
@testable import WilKE

@Suite struct StatsBLASTests {
    /// ssyrk / dsyrk fill the upper triangle with AᵀA (checked against a plain loop), and the f32 block
    /// the collector uses stays within ~1e-6 of the f64 product on SmolLM2-sized keys; timings printed.
    /// The two factorisations `KeyCovariance` picks between by size (full-storage dpotrf, packed dpptrf)
    /// leave the same packed factor, and a mis-spread triangle would not: a non-SPD input fails in both.
    @Test func fullAndPackedFactorsAgree() throws {
        let n = 97
        var g = SeededGenerator(seed: 5)
        let b = (0..<(n * n)).map { _ in Double.random(in: -1...1, using: &g) }
        var packed: [Double] = []
        for i in 0..<n { for j in i..<n {
            var s = i == j ? Double(n) : 0
            for k in 0..<n { s += b[i * n + k] * b[j * n + k] }
            packed.append(s)
        } }
        var viaFull = packed, viaPacked = packed
        #expect(KeyCovariance.factorInFull(&viaFull, n: n) == 0)
        #expect(viaPacked.withUnsafeMutableBufferPointer { BLAS.dpptrfPacked(n: n, ap: $0.baseAddress!) } == 0)
        let worst = zip(viaFull, viaPacked).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? 0
        #expect(worst < 1e-12, "largest relative difference \(worst)")
        var indefinite = packed
        indefinite[KeyCovariance.diagonalIndex(n / 2, n)] = -1
        #expect(KeyCovariance.factorInFull(&indefinite, n: n) > 0)
    }

    @Test func syrkUpperAgreesAndF32BlockIsAccurate() throws {
        var rng = SeededGenerator(seed: 4)
        // Small case against a loop.
        let (t, f) = (7, 5)
        let a = (0..<(t * f)).map { _ in Float.random(in: -1...1, using: &rng) }
        var c = [Float](repeating: -9, count: f * f)
        BLAS.ssyrkUpperAtA(n: f, k: t, a: a, lda: f, beta: 0, c: &c, ldc: f)
        for i in 0..<f { for j in 0..<f {
            if j < i { #expect(c[i * f + j] == -9); continue }  // lower triangle untouched
            var s: Float = 0
            for r in 0..<t { s += a[r * f + i] * a[r * f + j] }
            #expect(abs(c[i * f + j] - s) <= 1e-5)
        } }

        // SmolLM2 shape: one 2048-token block of F = 1536 SwiGLU-like keys.
        let (T, F) = (2048, 1536)
        let keys = (0..<(T * F)).map { _ in Float.random(in: -1...1, using: &rng) * Float.random(in: 0...1, using: &rng) }
        let keysD = keys.map(Double.init)
        var s32 = [Float](repeating: 0, count: F * F), s64 = [Double](repeating: 0, count: F * F)
        var clock = ContinuousClock.now
        BLAS.ssyrkUpperAtA(n: F, k: T, a: keys, lda: F, beta: 0, c: &s32, ldc: F)
        let t32 = ContinuousClock.now - clock
        clock = ContinuousClock.now
        BLAS.dsyrkUpperAtA(n: F, k: T, a: keysD, lda: F, beta: 0, c: &s64, ldc: F)
        let t64 = ContinuousClock.now - clock
        var worst = 0.0, scale = 0.0
        for i in 0..<F { for j in i..<F {
            worst = max(worst, abs(Double(s32[i * F + j]) - s64[i * F + j])); scale = max(scale, abs(s64[i * F + j]))
        } }
        print("syrk [\(T), \(F)]: f32 \(t32), f64 \(t64); f32 vs f64 max abs diff \(worst) (max |S| \(scale), rel \(worst / scale))")
        #expect(worst <= 1e-5 * scale)
    }
}
