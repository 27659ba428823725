import Foundation
import Testing
@testable import WilKE

/// ROME's loss on hand-sized logits: values against direct f64 formulas, gradients against finite differences.
@Suite struct RomeLossTests {
    let v = 7
    // Rows 0-1: rewriting row A's two targets; row 2: row B's single target; row 3: the KL position.
    let labels: [[RomeLoss.Label]] = [[.init(logitsRow: 0, token: 3), .init(logitsRow: 1, token: 5)], [.init(logitsRow: 2, token: 0)]]
    var logits: [[Float]] { (0..<4).map { noise(v, seed: 70 + UInt64($0)).map { $0 * 5 } } }
    var logP0: [Float] { RomeLoss.logSoftmax(noise(v, seed: 80).map { $0 * 5 }) }
    let delta: [Float] = [0.3, -1.2, 0.5], m0Norm: Float = 1.7

    func evaluate(_ logits: [[Float]], _ delta: [Float]) throws -> RomeLoss.Evaluation {
        try RomeLoss.evaluate(logits: logits, labels: labels, klRow: 3, logP0: logP0, delta: delta, m0Norm: m0Norm,
                              klFactor: 0.0625, weightDecay: 0.5)
    }

    @Test func valuesMatchDirectFormulas() throws {
        func logp(_ z: [Float]) -> [Double] {
            let s = z.reduce(0.0) { $0 + exp(Double($1)) }
            return z.map { Double($0) - log(s) }
        }
        let z = logits
        let nll = ((-logp(z[0])[3] - logp(z[1])[5]) / 2 + -logp(z[2])[0]) / 2
        let lp = logp(z[3])
        let kl = lp.indices.reduce(0.0) { $0 + exp(lp[$1]) * (lp[$1] - Double(logP0[$1])) }
        let wd = 0.5 * delta.reduce(0.0) { $0 + Double($1 * $1) }.squareRoot() / Double(m0Norm * m0Norm)
        let t = try evaluate(z, delta).terms
        print("RomeLoss terms \(t) vs nll \(nll) kl \(kl) wd \(wd)")
        #expect(abs(Double(t.nll) - nll) < 1e-6 && abs(Double(t.kl) - kl) < 1e-6 && abs(Double(t.wd) - wd) < 1e-6)
        #expect(abs(Double(t.total) - (nll + 0.0625 * kl + wd)) < 1e-6)
        #expect(kl > 0)
    }

    @Test func gradientsMatchFiniteDifferences() throws {
        let z = logits
        let e = try evaluate(z, delta)
        let flat = Array(z.joined())
        let numeric = numericGradient(flat, weights: [1]) { f in
            [try! evaluate((0..<4).map { Array(f[($0 * v)..<(($0 + 1) * v)]) }, delta).terms.total]
        }
        let err = relativeError(Array(e.dLogits.joined()), numeric)
        let numDelta = numericGradient(delta, weights: [1]) { [try! evaluate(z, $0).terms.total] }
        let errDelta = relativeError(e.dDelta, numDelta)
        print("RomeLoss dLogits relative error \(err), dδ relative error \(errDelta)")
        #expect(err < 2e-3 && errDelta < 2e-3)
    }

    /// At δ = 0 with P₀ = P_δ: KL = 0 with zero gradient, WD = 0 with gradient 0 (PyTorch's masked norm).
    @Test func firstStepHasNoKLOrWeightDecayGradient() throws {
        let z = logits
        let zero = [Float](repeating: 0, count: 3)
        let withKL = try RomeLoss.evaluate(logits: z, labels: labels, klRow: 3, logP0: RomeLoss.logSoftmax(z[3]),
                                           delta: zero, m0Norm: m0Norm)
        let none = try RomeLoss.evaluate(logits: z, labels: labels, klRow: nil, logP0: nil, delta: zero, m0Norm: m0Norm)
        #expect(abs(withKL.terms.kl) < 1e-7 && withKL.terms.wd == 0 && withKL.dDelta == zero)
        #expect(maxAbsDiff(Array(withKL.dLogits.joined()), Array(none.dLogits.joined())) < 1e-7)
        #expect(none.dLogits[3].allSatisfy { $0 == 0 })
    }

    @Test func rejectsATargetOutsideTheVocabulary() {
        #expect(throws: WilKEError.tokenOutOfRange(token: 9, vocabSize: 7)) {
            try RomeLoss.evaluate(logits: logits, labels: [[.init(logitsRow: 0, token: 9)]], klRow: nil, logP0: nil,
                                  delta: delta, m0Norm: m0Norm)
        }
    }
}
