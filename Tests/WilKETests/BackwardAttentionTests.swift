import Foundation
import Testing
@testable import WilKE

/// Attention backward over packed rows with cached (constant) prefixes and GQA, against finite differences
/// of the forward in the new queries, keys and values.
@Suite struct BackwardAttentionTests {
    struct Setup {
        let h: Int, g: Int, d: Int
        /// (past, n) per row
        let rows: [(Int, Int)]
        var total: Int { rows.reduce(0) { $0 + $1.1 } }
        var qCount: Int { total * h * d }
        var kvCount: Int { total * g * d }
        let prefixK: [[Float]], prefixV: [[Float]]

        init(h: Int, g: Int, d: Int, rows: [(Int, Int)]) {
            self.h = h; self.g = g; self.d = d; self.rows = rows
            prefixK = rows.enumerated().map { noise($1.0 * g * d, seed: 100 + UInt64($0)) }
            prefixV = rows.enumerated().map { noise($1.0 * g * d, seed: 200 + UInt64($0)) }
        }

        /// Forward from the flat parameters [q | new k | new v]; returns the output and the kept probabilities.
        func forward(_ params: [Float]) -> (out: [Float], rows: [AttentionRow], keep: [FloatBuffer]) {
            let kvd = g * d
            let q = FloatBuffer(Array(params[0..<qCount]))
            var keep: [FloatBuffer] = [q]
            var attRows: [AttentionRow] = []
            var offset = 0
            for (r, (past, n)) in rows.enumerated() {
                let newK = params[(qCount + offset * kvd)..<(qCount + (offset + n) * kvd)]
                let newV = params[(qCount + kvCount + offset * kvd)..<(qCount + kvCount + (offset + n) * kvd)]
                let k = FloatBuffer(prefixK[r] + newK), v = FloatBuffer(prefixV[r] + newV)
                let att = FloatBuffer(count: h * n * (past + n))
                keep += [k, v, att]
                attRows.append(AttentionRow(offset: offset, n: n, past: past, k: k.p, v: v.p, att: att.p))
                offset += n
            }
            let out = FloatBuffer(count: total * h * d)
            Attention.forward(out: out.p, q: q.p, rows: attRows, nHead: h, nKVHead: g, headDim: d)
            return (out.array, attRows, keep)
        }

        /// Backward with dout; returns the flat gradient [dq | dk | dv] (started at 1, minus 1: accumulation).
        func backward(_ params: [Float], dout: [Float]) -> [Float] {
            let (_, attRows, keep) = forward(params)
            let dq = FloatBuffer([Float](repeating: 1, count: qCount))
            let dk = FloatBuffer([Float](repeating: 1, count: kvCount)), dv = FloatBuffer([Float](repeating: 1, count: kvCount))
            let da = FloatBuffer(dout)
            Attention.backward(dq: dq.p, dk: dk.p, dv: dv.p, da: da.p, q: keep[0].p, rows: attRows,
                               nHead: h, nKVHead: g, headDim: d)
            withExtendedLifetime(keep) {}
            return (dq.array + dk.array + dv.array).map { $0 - 1 }
        }
    }

    @Test func matchesFiniteDifferences() {
        let s = Setup(h: 4, g: 2, d: 3, rows: [(2, 3), (0, 2), (4, 1)])
        let params = noise(s.qCount + 2 * s.kvCount, seed: 7).map { $0 * 2 }, dout = noise(s.qCount, seed: 8)
        let got = s.backward(params, dout: dout)
        let numeric = numericGradient(params, weights: dout) { s.forward($0).out }
        let e = relativeError(got, numeric)
        print("attention backward vs finite differences: relative error \(e)")
        #expect(e < 2e-3)
    }

    /// Large enough for the multi-threaded path: a directional derivative along a random direction.
    @Test func threadedPathMatchesDirectionalDerivative() {
        let s = Setup(h: 4, g: 2, d: 64, rows: [(30, 18), (10, 20)])
        let params = noise(s.qCount + 2 * s.kvCount, seed: 9), dout = noise(s.qCount, seed: 10)
        let u = noise(params.count, seed: 11)
        let got = zip(s.backward(params, dout: dout), u).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        let eps: Float = 1e-3
        func loss(_ t: Float) -> Double {
            zip(s.forward(zip(params, u).map { $0 + t * $1 }).out, dout).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        }
        let numeric = (loss(eps) - loss(-eps)) / Double(2 * eps)
        let e = abs(got - numeric) / abs(numeric)
        print("threaded attention backward directional derivative \(got) vs \(numeric): relative error \(e)")
        #expect(e < 1e-3)
    }
}
