import Foundation
import Testing
import TestSupport
@testable import Formats
@testable import Patch
@testable import WilKE

/// Edits in memory as a low-rank term over the stored matrix (`Weight.adding`) against the dense matrix
/// W + AᵀB, and the roll-back that drops the term.
@Suite(.serialized) struct LowRankWeightTests {
    /// W + Σ_t a_t ⊗ b_t in f64, [rows, cols]. - a: [k, rows]; b: [k, cols]
    static func dense(_ w: [Float], _ a: [Float], _ b: [Float], k: Int, rows: Int, cols: Int) -> [Double] {
        var out = w.map(Double.init)
        for t in 0..<k { for i in 0..<rows { for j in 0..<cols { out[i * cols + j] += Double(a[t * rows + i]) * Double(b[t * cols + j]) } } }
        return out
    }

    /// Forward, backward, row, materialize and the norm of a quantized and an f32 weight with a rank-3
    /// term (two `adding` calls) match the dense matrix, in every layout, with and without the f32 copy.
    @Test(arguments: [DType.q4_0, .f32]) func termMatchesTheDenseMatrix(dtype: DType) throws {
        for layout in WeightTests.layouts {
            for cached in [false, true] {
                let (w0, bytes, ref) = try WeightTests.matrix(dtype, layout)
                w0.cacheable = cached
                let (rows, cols) = (w0.rows, w0.cols)
                let a = noise(3 * rows, seed: 21).map { $0 * 0.1 }, b = noise(3 * cols, seed: 22).map { $0 * 0.1 }
                let w = w0.adding(left: Array(a[..<rows]), right: Array(b[..<cols]), rank: 1)
                    .adding(left: Array(a[rows...]), right: Array(b[cols...]), rank: 2)
                let what = "\(dtype) \(layout.name) cached \(cached)"
                #expect(w.lowRank?.rank == 3 && w.stored === w0.stored && w0.lowRank == nil, "\(what): a term over the same view")
                let d = Self.dense(ref, a, b, k: 3, rows: rows, cols: cols)
                #expect(WeightTests.relativeError(w.materialize().array, d) < 1e-6, "\(what): materialize")
                var one = [Float](repeating: 0, count: cols)
                one.withUnsafeMutableBufferPointer { w.row(77, into: $0.baseAddress!) }
                #expect(WeightTests.relativeError(one, Array(d[(77 * cols)..<(78 * cols)])) < 1e-6, "\(what): row")
                let norm = d.reduce(0) { $0 + $1 * $1 }
                #expect(abs(w.sumOfSquares() - norm) / norm < 1e-6, "\(what): ‖W + AᵀB‖²")
                for n in [1, 3] {
                    let x = noise(n * cols, seed: 11), dy = noise(n * rows, seed: 12), bias = noise(rows, seed: 13)
                    var y = [Float](repeating: 0, count: n * rows), dx = noise(n * cols, seed: 14)
                    let dx0 = dx
                    y.withUnsafeMutableBufferPointer { w.forward(out: $0.baseAddress!, inp: x, bias: bias, n: n) }
                    dx.withUnsafeMutableBufferPointer { w.backward(dinp: $0.baseAddress!, dout: dy, n: n) }
                    var yRef = [Double](repeating: 0, count: n * rows), dxRef = dx0.map(Double.init)
                    for i in 0..<n {
                        for r in 0..<rows {
                            var s = Double(bias[r])
                            for c in 0..<cols { s += Double(x[i * cols + c]) * d[r * cols + c] }
                            yRef[i * rows + r] = s
                            for c in 0..<cols { dxRef[i * cols + c] += Double(dy[i * rows + r]) * d[r * cols + c] }
                        }
                    }
                    #expect(WeightTests.relativeError(y, yRef) < 1e-5, "\(what) n=\(n): forward")
                    #expect(WeightTests.relativeError(dx, dxRef) < 1e-5, "\(what) n=\(n): backward")
                }
                if layout != .permutedRows(heads: 16) {
                    let part = w.rows(64..<192)
                    #expect(WeightTests.relativeError(part.materialize().array, Array(d[(64 * cols)..<(192 * cols)])) < 1e-6, "\(what): slice")
                }
                withExtendedLifetime(bytes) {}
            }
        }
    }

    /// Past `foldRank` components the term becomes one f32 matrix with the same values.
    @Test func manyComponentsFoldIntoOneMatrix() throws {
        let (w0, bytes, ref) = try WeightTests.matrix(.q8_0, .rowMajor)
        let (rows, cols) = (w0.rows, w0.cols)
        let k = LowRank.foldRank(rows: rows, cols: cols)
        let a = noise((k + 1) * rows, seed: 31).map { $0 * 0.01 }, b = noise((k + 1) * cols, seed: 32).map { $0 * 0.01 }
        let below = w0.adding(left: Array(a[..<(k * rows)]), right: Array(b[..<(k * cols)]), rank: k)
        #expect(below.lowRank?.rank == k && below.directF32 == nil)
        let folded = below.adding(left: Array(a[(k * rows)...]), right: Array(b[(k * cols)...]), rank: 1)
        #expect(folded.lowRank == nil && folded.directF32 != nil)
        #expect(WeightTests.relativeError(folded.materialize().array, Self.dense(ref, a, b, k: k + 1, rows: rows, cols: cols)) < 1e-6)
        withExtendedLifetime(bytes) {}
    }

    static func logits(_ model: TransformerModel, _ ids: [Int]) throws -> [Float] {
        try model.forward(ForwardBatch(sequences: [ids], logitsAt: [TokenPosition(row: 0, pos: ids.count - 1)])).logits[0]
    }

    /// A term on a tiny model gives the logits of the dense edited matrix (1e-4), and restoring the
    /// snapshot taken before it gives the unedited logits bit for bit.
    @Test func termOnAModelMatchesDenseAndRollsBackExactly() throws {
        let fx = try FixtureModel("llama"), dense = try FixtureModel("llama")
        let (c, f, l) = (fx.config.dModel, fx.config.dFF, 1)
        let ids = Array(try fx.rows[0].prefix(12))
        let before = try Self.logits(fx.model, ids)
        let snapshot = fx.model.mlpOutputSnapshot()
        let u = noise(c, seed: 41).map { $0 * 0.2 }, v = noise(f, seed: 42).map { $0 * 0.2 }
        try fx.model.addMLPOutputTerm(layer: l, left: u, right: v, rank: 1)
        var w = dense.model.mlpOutputWeight(layer: l)
        for i in 0..<c { for j in 0..<f { w[i * f + j] += u[i] * v[j] } }
        try dense.model.setMLPOutputWeight(layer: l, w)
        let edited = try Self.logits(fx.model, ids), expected = try Self.logits(dense.model, ids)
        #expect(maxAbsDiff(edited, expected) < 1e-4)
        #expect(maxAbsDiff(edited, before) > 1e-3)  // the term does change the model
        try fx.model.restore(snapshot)
        #expect(try Self.logits(fx.model, ids) == before)
    }

    /// On SmolLM2 (Q4_1): an editor's ROME edit is a term over the stored view, its model matches the
    /// patch's dense result bytes (what `wilke apply` writes) and `ask --patch`, and restoring the
    /// snapshot leaves the model bit-identical to before the edit.
    @Test(.enabled(if: RealModel.available)) func editorEditIsATermAndRollsBackExactly() throws {
        let loaded = try LoadedModel(path: RealModel.path)
        var hp = EditHyperparameters.defaults(layers: loaded.config.nLayer, family: .llama)
        hp.steps = 4
        let editor = Editor(loaded, hyperparameters: hp) { _ in nil }
        let ids = try loaded.encodePrompt("The capital of France is")
        let before = try Self.logits(loaded.model, ids)
        let snapshot = loaded.model.mlpOutputSnapshot()
        let fact = EditRequest(prompt: "The capital of {} is", subject: "France", targetNew: "Rome", targetTrue: "Paris")
        let report = try editor.edit(fact, method: .rome, layer: 5, allowKnownTarget: true)
        let down = loaded.model.weights.layers[report.layer].wDown
        #expect(down.lowRank?.rank == 1 && down.dtype == .q4_1)
        let edited = try Self.logits(loaded.model, ids)
        // ask --patch serves the same term; the dense result bytes agree within the fixture tolerance.
        let patch = editor.patch()
        #expect(try Self.logits(try LoadedModel(checkpoint: loaded.checkpoint, patches: [patch]).model, ids) == edited)
        let t = try #require(loaded.checkpoint.tensor(patch.steps[0].tensor))
        let result = try TensorDelta.apply(patch.steps[0], to: loaded.checkpoint.tensorBytes(t))
        let dense = try LoadedModel(path: RealModel.path)
        try dense.model.setMLPOutputWeight(layer: report.layer, Weight(t, result: result))
        let diff = maxAbsDiff(edited, try Self.logits(dense.model, ids))
        print("low-rank vs dense result bytes on SmolLM2: max |logit diff| \(diff)")
        #expect(diff < 1e-4)
        try loaded.model.restore(snapshot)
        #expect(try Self.logits(loaded.model, ids) == before)
    }
}
