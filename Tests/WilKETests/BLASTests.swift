import Testing
@testable import WilKE

@Suite struct BLASTests {
    /// out = inp · Wᵀ (llm.c's matmul_forward convention) against the naive triple loop.
    @Test func sgemmMatchesNaiveLoops() {
        let (bt, c, oc) = (5, 7, 3)
        let inp = (0..<(bt * c)).map { Float(($0 * 37) % 11) / 11 - 0.5 }
        let w = (0..<(oc * c)).map { Float(($0 * 13) % 7) / 7 - 0.5 }
        var out = [Float](repeating: 0, count: bt * oc)
        BLAS.sgemm(transA: false, transB: true, m: bt, n: oc, k: c, a: inp, lda: c, b: w, ldb: c, c: &out, ldc: oc)
        var maxDiff: Float = 0
        for i in 0..<bt { for o in 0..<oc {
            var s: Float = 0
            for j in 0..<c { s += inp[i * c + j] * w[o * c + j] }
            maxDiff = max(maxDiff, abs(s - out[i * oc + o]))
        } }
        #expect(maxDiff < 1e-6)
    }
}
