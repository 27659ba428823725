import Foundation
import Testing
@testable import WilKE

/// Deterministic pseudo-random values in [-1, 1).
func noise(_ n: Int, seed: UInt64) -> [Float] {
    var g = SeededGenerator(seed: seed)
    return (0..<n).map { _ in Float.random(in: -1..<1, using: &g) }
}

/// Each layer kernel against a direct (double precision where it matters) formula.
@Suite struct ForwardLayerTests {
    @Test(arguments: [1, 7]) func matmulMatchesNaive(n: Int) {
        let (c, oc) = (13, 5)
        let inp = FloatBuffer(noise(n * c, seed: 1)), w = FloatBuffer(noise(oc * c, seed: 2)), b = FloatBuffer(noise(oc, seed: 3))
        let fast = FloatBuffer(count: n * oc), slow = FloatBuffer(count: n * oc)
        Matmul.forward(out: fast.p, inp: inp.p, weight: w.p, bias: b.p, n: n, c: c, oc: oc)
        Matmul.forwardNaive(out: slow.p, inp: inp.p, weight: w.p, bias: b.p, n: n, c: c, oc: oc)
        let d = maxAbsDiff(fast.array, slow.array)
        print("matmul max abs diff \(d)")
        #expect(d < 1e-5)
    }

    /// Attention over a cached prefix equals the last rows of attention over the whole sequence, for GQA
    /// (4 query heads on 2 kv heads), on both the serial and the multi-threaded path.
    @Test(arguments: [(9, 4), (48, 30)]) func attentionWithPrefixMatchesNaive(n: Int, past: Int) {
        let (h, g, d) = (4, 2, n > 20 ? 64 : 8)
        let q = noise(n * h * d, seed: 4), k = noise(n * g * d, seed: 5), v = noise(n * g * d, seed: 6)
        var ref = [Float](repeating: 0, count: n * h * d)
        Attention.forwardNaive(out: &ref, q: q, k: k, v: v, n: n, nHead: h, nKVHead: g, headDim: d)
        for p in [0, past] {
            // The same row packed twice (distinct offsets and probability buffers) exercises packing.
            let tail = Array(q[(p * h * d)...]), m = n - p
            let newQ = FloatBuffer(tail + tail), kb = FloatBuffer(k), vb = FloatBuffer(v)
            let out = FloatBuffer(count: 2 * m * h * d), att = FloatBuffer(count: h * m * n), att2 = FloatBuffer(count: h * m * n)
            let rows = [AttentionRow(offset: 0, n: m, past: p, k: kb.p, v: vb.p, att: att.p),
                        AttentionRow(offset: m, n: m, past: p, k: kb.p, v: vb.p, att: att2.p)]
            Attention.forward(out: out.p, q: newQ.p, rows: rows, nHead: h, nKVHead: g, headDim: d)
            let expected = Array(ref[(p * h * d)...])
            let diff = maxAbsDiff(out.array, expected + expected)
            print("attention n=\(n) past=\(p) max abs diff \(diff)")
            #expect(diff < 1e-5)
            // Probabilities: each query's row sums to 1 and is 0 on future keys.
            let probs = att.array
            for i in 0..<(n - p) {
                let r = Array(probs[(i * n)..<((i + 1) * n)])
                #expect(abs(r.reduce(0, +) - 1) < 1e-5)
                #expect(r[(p + i + 1)..<n].allSatisfy { $0 == 0 })
            }
        }
    }

    /// RoPE as complex rotation: pair (a, b) → (a + ib)·e^{i·pos·θ^(-2j/R)}; llama pairs j with j + R/2,
    /// GPT-J pairs 2j with 2j + 1 and leaves dims ≥ R untouched.
    @Test(arguments: [false, true]) func ropeMatchesComplexRotation(interleaved: Bool) {
        let (heads, d, r, theta) = (3, 8, interleaved ? 4 : 8, Float(500))
        let positions = [0, 1, 7, 63]
        let x = noise(positions.count * heads * d, seed: 9)
        let buf = FloatBuffer(x)
        RoPE.forward(x: buf.p, positions: positions, nHead: heads, headDim: d, rotaryDim: r, theta: theta, interleaved: interleaved)
        var worst: Float = 0
        for (t, pos) in positions.enumerated() { for hd in 0..<heads {
            let base = (t * heads + hd) * d
            var expected = Array(x[base..<(base + d)])
            for j in 0..<(r / 2) {
                let (i0, i1) = interleaved ? (2 * j, 2 * j + 1) : (j, j + r / 2)
                let ang = Double(pos) * pow(Double(theta), -2 * Double(j) / Double(r))
                let (a, b) = (Double(x[base + i0]), Double(x[base + i1]))
                expected[i0] = Float(a * cos(ang) - b * sin(ang))
                expected[i1] = Float(a * sin(ang) + b * cos(ang))
            }
            worst = max(worst, maxAbsDiff(expected, Array(buf.array[base..<(base + d)])))
        } }
        print("rope interleaved=\(interleaved) max abs diff \(worst)")
        #expect(worst < 1e-4)
    }

    @Test func normsMatchFormulas() {
        let (n, c, eps) = (3, 10, Float(1e-5))
        let x = noise(n * c, seed: 11), w = noise(c, seed: 12), b = noise(c, seed: 13)
        let xb = FloatBuffer(x), wb = FloatBuffer(w), bb = FloatBuffer(b)
        let ln = FloatBuffer(count: n * c), rms = FloatBuffer(count: n * c)
        let mean = FloatBuffer(count: n), rstd = FloatBuffer(count: n), rrstd = FloatBuffer(count: n)
        LayerNorm.forward(out: ln.p, mean: mean.p, rstd: rstd.p, inp: xb.p, weight: wb.p, bias: bb.p, n: n, c: c, eps: eps)
        RMSNorm.forward(out: rms.p, rstd: rrstd.p, inp: xb.p, weight: wb.p, n: n, c: c, eps: eps)
        var worst: Float = 0
        for i in 0..<n {
            let row = x[(i * c)..<((i + 1) * c)].map(Double.init)
            let m = row.reduce(0, +) / Double(c)
            let varc = row.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(c)
            let ms = row.map { $0 * $0 }.reduce(0, +) / Double(c)
            for j in 0..<c {
                let eLN = (row[j] - m) / (varc + Double(eps)).squareRoot() * Double(w[j]) + Double(b[j])
                let eRMS = row[j] / (ms + Double(eps)).squareRoot() * Double(w[j])
                worst = max(worst, abs(Float(eLN) - ln[i * c + j]), abs(Float(eRMS) - rms[i * c + j]))
            }
        }
        #expect(worst < 1e-5)
    }

    @Test func activationsMatchFormulas() {
        let x = noise(50, seed: 14).map { $0 * 4 }, u = noise(50, seed: 15)
        let xb = FloatBuffer(x), ub = FloatBuffer(u), gelu = FloatBuffer(count: 50), glu = FloatBuffer(count: 50)
        GELUNew.forward(out: gelu.p, inp: xb.p, n: 50)
        SwiGLU.forward(out: glu.p, gate: xb.p, up: ub.p, n: 50)
        var worst: Float = 0
        for i in 0..<50 {
            let v = Double(x[i])
            let g = 0.5 * v * (1 + tanh((2 / Double.pi).squareRoot() * (v + 0.044715 * v * v * v)))
            let s = v / (1 + exp(-v)) * Double(u[i])
            worst = max(worst, abs(Float(g) - gelu[i]), abs(Float(s) - glu[i]))
        }
        #expect(worst < 1e-5)
    }
}
