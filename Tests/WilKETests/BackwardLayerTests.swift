import Foundation
import Testing
@testable import WilKE

/// Central-difference gradient of L(x) = Σ w · f(x), accumulated in f64. Returns [x.count].
func numericGradient(_ x: [Float], weights w: [Float], eps: Float = 1e-3, _ f: ([Float]) -> [Float]) -> [Float] {
    func loss(_ y: [Float]) -> Double { zip(f(y), w).reduce(0) { $0 + Double($1.0) * Double($1.1) } }
    return x.indices.map { i in
        var plus = x, minus = x
        plus[i] += eps; minus[i] -= eps
        return Float((loss(plus) - loss(minus)) / Double(2 * eps))
    }
}

/// max |a − b| / max |b|: an error relative to the gradient's scale.
func relativeError(_ a: [Float], _ b: [Float]) -> Float {
    maxAbsDiff(a, b) / max(b.map(abs).max() ?? 0, 1e-12)
}

/// ‖a − b‖ / ‖b‖.
func relativeL2(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count)
    let num = zip(a, b).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }
    let den = b.reduce(0.0) { $0 + Double($1) * Double($1) }
    return Float((num / max(den, 1e-30)).squareRoot())
}

/// Each layer's backward against central finite differences of its forward at tiny dims (llm.c
/// doc/layernorm style: N = 2·3 rows, C = 4). Gradients start at 1 to check they accumulate.
@Suite struct BackwardLayerTests {
    let n = 6, c = 4

    func check(_ name: String, _ analytic: [Float], _ numeric: [Float], tol: Float = 2e-3) {
        let e = relativeError(analytic, numeric)
        print("\(name) backward vs finite differences: relative error \(e)")
        #expect(e < tol, "\(name): \(e)")
    }

    /// The kernel's accumulated gradient minus the initial 1s.
    func accumulated(_ count: Int, _ body: (UnsafeMutablePointer<Float>) -> Void) -> [Float] {
        let g = FloatBuffer([Float](repeating: 1, count: count))
        body(g.p)
        return g.array.map { $0 - 1 }
    }

    @Test func layerNorm() {
        let x = noise(n * c, seed: 11).map { $0 * 3 }, w = noise(c, seed: 12), b = noise(c, seed: 13), dout = noise(n * c, seed: 14)
        let (wb, bb) = (FloatBuffer(w), FloatBuffer(b))
        func fwd(_ x: [Float]) -> (out: FloatBuffer, mean: FloatBuffer, rstd: FloatBuffer) {
            let out = FloatBuffer(count: n * c), mean = FloatBuffer(count: n), rstd = FloatBuffer(count: n)
            let xb = FloatBuffer(x)
            LayerNorm.forward(out: out.p, mean: mean.p, rstd: rstd.p, inp: xb.p, weight: wb.p, bias: bb.p,
                              n: n, c: c, eps: 1e-5)
            return (out, mean, rstd)
        }
        let (_, mean, rstd) = fwd(x), xb = FloatBuffer(x), db = FloatBuffer(dout)
        let got = accumulated(n * c) {
            LayerNorm.backward(dinp: $0, dout: db.p, inp: xb.p, mean: mean.p, rstd: rstd.p, weight: wb.p, n: n, c: c)
        }
        check("LayerNorm", got, numericGradient(x, weights: dout) { fwd($0).out.array })
    }

    @Test func rmsNorm() {
        let x = noise(n * c, seed: 21).map { $0 * 3 }, w = noise(c, seed: 22), dout = noise(n * c, seed: 24)
        let wb = FloatBuffer(w)
        func fwd(_ x: [Float]) -> (out: FloatBuffer, rstd: FloatBuffer) {
            let out = FloatBuffer(count: n * c), rstd = FloatBuffer(count: n)
            let xb = FloatBuffer(x)
            RMSNorm.forward(out: out.p, rstd: rstd.p, inp: xb.p, weight: wb.p, n: n, c: c, eps: 1e-6)
            return (out, rstd)
        }
        let rstd = fwd(x).rstd, xb = FloatBuffer(x), db = FloatBuffer(dout)
        let got = accumulated(n * c) {
            RMSNorm.backward(dinp: $0, dout: db.p, inp: xb.p, rstd: rstd.p, weight: wb.p, n: n, c: c)
        }
        check("RMSNorm", got, numericGradient(x, weights: dout) { fwd($0).out.array })
    }

    /// sgemm (n > 1) and sgemv (n = 1) paths against the naive loop and finite differences.
    @Test(arguments: [1, 5]) func matmul(rows: Int) {
        let (c, oc) = (7, 3)
        let x = noise(rows * c, seed: 31), w = FloatBuffer(noise(oc * c, seed: 32)), dout = noise(rows * oc, seed: 33)
        let db = FloatBuffer(dout)
        let got = accumulated(rows * c) { Matmul.backward(dinp: $0, dout: db.p, weight: w.p, n: rows, c: c, oc: oc) }
        let naive = accumulated(rows * c) { Matmul.backwardNaive(dinp: $0, dout: db.p, weight: w.p, n: rows, c: c, oc: oc) }
        let numeric = numericGradient(x, weights: dout) { x in
            let out = FloatBuffer(count: rows * oc)
            let xb = FloatBuffer(x)
            Matmul.forward(out: out.p, inp: xb.p, weight: w.p, bias: nil, n: rows, c: c, oc: oc)
            return out.array
        }
        print("matmul backward n=\(rows) vs naive max abs diff \(maxAbsDiff(got, naive))")
        #expect(maxAbsDiff(got, naive) < 1e-5)
        check("Matmul n=\(rows)", got, numeric)
    }

    @Test func geluNew() {
        let x = noise(n * c, seed: 41).map { $0 * 4 }, dout = noise(n * c, seed: 42)
        let (xb, db) = (FloatBuffer(x), FloatBuffer(dout))
        let got = accumulated(n * c) { GELUNew.backward(dinp: $0, inp: xb.p, dout: db.p, n: n * c) }
        check("GELU", got, numericGradient(x, weights: dout) { x in
            let out = FloatBuffer(count: x.count)
            let xb = FloatBuffer(x)
            GELUNew.forward(out: out.p, inp: xb.p, n: x.count)
            return out.array
        })
    }

    @Test func swiGLU() {
        let g = noise(n * c, seed: 51).map { $0 * 4 }, u = noise(n * c, seed: 52), dout = noise(n * c, seed: 53)
        let (gb, ub, db) = (FloatBuffer(g), FloatBuffer(u), FloatBuffer(dout))
        let dUp = FloatBuffer([Float](repeating: 1, count: n * c))
        let dGate = accumulated(n * c) { SwiGLU.backward(dgate: $0, dup: dUp.p, dout: db.p, gate: gb.p, up: ub.p, n: n * c) }
        func fwd(_ g: [Float], _ u: [Float]) -> [Float] {
            let out = FloatBuffer(count: g.count)
            let (gb, ub) = (FloatBuffer(g), FloatBuffer(u))
            SwiGLU.forward(out: out.p, gate: gb.p, up: ub.p, n: g.count)
            return out.array
        }
        check("SwiGLU gate", dGate, numericGradient(g, weights: dout) { fwd($0, u) })
        check("SwiGLU up", dUp.array.map { $0 - 1 }, numericGradient(u, weights: dout) { fwd(g, $0) })
    }

    /// Both pairings, with GPT-J's partial rotation (dims ≥ R pass through).
    @Test(arguments: [false, true]) func rope(interleaved: Bool) {
        let (heads, d, r) = (2, 6, interleaved ? 4 : 6)
        let positions = [0, 3, 17]
        let x = noise(positions.count * heads * d, seed: 61), dout = noise(x.count, seed: 62)
        let dx = FloatBuffer(dout)
        RoPE.backward(dx: dx.p, positions: positions, nHead: heads, headDim: d, rotaryDim: r, theta: 100, interleaved: interleaved)
        check("RoPE interleaved=\(interleaved)", dx.array, numericGradient(x, weights: dout) { x in
            let b = FloatBuffer(x)
            RoPE.forward(x: b.p, positions: positions, nHead: heads, headDim: d, rotaryDim: r, theta: 100, interleaved: interleaved)
            return b.array
        })
    }
}
