import Foundation
import Testing
@testable import WilKE

/// Properties of the packed / cached forward pass that ROME relies on, checked on the fixture models.
@Suite struct ForwardBehaviourTests {
    func rowLogits(_ out: ForwardResult, _ rows: [[Int]], _ r: Int) -> [Float] {
        let start = rows[..<r].reduce(0) { $0 + $1.count }
        return Array(out.logits[start..<(start + rows[r].count)].joined())
    }

    @Test(arguments: fixtureArchs) func packedRowsEqualRowsAlone(arch: String) throws {
        let fx = try FixtureModel(arch)
        let rows = try fx.rows
        let packed = try fx.model.forward(.allLogits(rows))
        var worst: Float = 0
        for r in rows.indices {
            let alone = try fx.model.forward(.allLogits([rows[r]]))
            worst = max(worst, maxAbsDiff(rowLogits(packed, rows, r), Array(alone.logits.joined())))
        }
        print("\(arch) packed vs alone max abs diff \(worst)")
        #expect(worst <= 1e-5)
    }

    @Test(arguments: fixtureArchs) func logitsAtSubsetEqualsFullRows(arch: String) throws {
        let fx = try FixtureModel(arch)
        let rows = try fx.rows
        let full = try fx.model.forward(.allLogits(rows))
        let picks = [TokenPosition(row: 2, pos: 10), TokenPosition(row: 0, pos: 0), TokenPosition(row: 1, pos: 3)]
        let sub = try fx.model.forward(ForwardBatch(sequences: rows, logitsAt: picks))
        var worst: Float = 0
        for (i, p) in picks.enumerated() {
            let start = rows[..<p.row].reduce(0) { $0 + $1.count } + p.pos
            worst = max(worst, maxAbsDiff(sub.logits[i], full.logits[start]))
        }
        print("\(arch) logitsAt subset max abs diff \(worst)")
        #expect(sub.logits.count == 3 && worst <= 1e-5)
    }

    /// δ at (row 0, pos 3) may only move row 0's positions ≥ 3: attention is causal and rows are independent.
    @Test(arguments: fixtureArchs) func mlpDeltaIsCausal(arch: String) throws {
        let fx = try FixtureModel(arch)
        let rows = try fx.rows
        let base = try fx.model.forward(.allLogits(rows))
        var b = ForwardBatch.allLogits(rows)
        b.mlpDelta = Intervention(layer: 0, vector: (0..<fx.config.dModel).map { Float($0 % 5) - 2 },
                                  at: [TokenPosition(row: 0, pos: 3)])
        let moved = try fx.model.forward(b)
        for (i, p) in b.logitsAt.enumerated() {
            let d = maxAbsDiff(base.logits[i], moved.logits[i])
            if p.row == 0 && p.pos >= 3 {
                #expect(d > 1e-3, "\(arch) (\(p.row),\(p.pos)) should move")
            } else {
                #expect(d <= 1e-6, "\(arch) (\(p.row),\(p.pos)) moved by \(d)")
            }
        }
    }

    @Test(arguments: fixtureArchs) func residualResumeEqualsFullPass(arch: String) throws {
        let fx = try FixtureModel(arch)
        let rows = try fx.rows
        let full = try fx.model.forward(.allLogits(rows))
        for l in 0...fx.config.nLayer {
            var rec = ForwardBatch(sequences: rows)
            rec.cacheResidualAt = l
            var resume = ForwardBatch.allLogits(rows)
            resume.resume = try fx.model.forward(rec).residual
            let d = maxAbsDiff(Array(try fx.model.forward(resume).logits.joined()), Array(full.logits.joined()))
            #expect(d <= 1e-6, "\(arch) resume at layer \(l): \(d)")
        }
    }

    /// §8 causal-prefix reuse: positions < p computed once (their K/V), only positions ≥ p re-run.
    @Test(arguments: fixtureArchs) func cachedPrefixEqualsFullPass(arch: String) throws {
        let fx = try FixtureModel(arch)
        let rows = try fx.rows
        var b = ForwardBatch.allLogits(rows)
        b.returnKV = true
        let full = try fx.model.forward(b)
        let cut = [1, 2, 5]
        var suffix = ForwardBatch(sequences: rows.indices.map { Array(rows[$0][cut[$0]...]) })
        suffix.prefixes = rows.indices.map { full.kv[$0].prefix(cut[$0]) }
        suffix.logitsAt = rows.indices.flatMap { r in (cut[r]..<rows[r].count).map { TokenPosition(row: r, pos: $0) } }
        let out = try fx.model.forward(suffix)
        var worst: Float = 0
        for (i, p) in suffix.logitsAt.enumerated() {
            let start = rows[..<p.row].reduce(0) { $0 + $1.count } + p.pos
            worst = max(worst, maxAbsDiff(out.logits[i], full.logits[start]))
        }
        print("\(arch) cached prefix max abs diff \(worst)")
        #expect(worst <= 1e-5)
    }

    /// ROME's step as it will run: prefix K/V before the subject token, residual entering layer l+1 for the
    /// rest, δ added to that residual at the subject token — equal to a full pass with δ on layer l's MLP.
    @Test(arguments: fixtureArchs) func romeStepFromCachesEqualsFullPass(arch: String) throws {
        let fx = try FixtureModel(arch)
        let rows = try fx.rows
        let layer = 0, subject = [3, 1, 6]
        let delta = (0..<fx.config.dModel).map { sin(Float($0)) }
        var full = ForwardBatch.allLogits(rows)
        full.mlpDelta = Intervention(layer: layer, vector: delta, at: subject.enumerated().map { TokenPosition(row: $0, pos: $1) })
        let expected = try fx.model.forward(full)

        var once = ForwardBatch(sequences: rows)
        once.returnKV = true
        once.cacheResidualAt = layer + 1
        let base = try fx.model.forward(once)
        var step = ForwardBatch(sequences: rows.indices.map { Array(rows[$0][subject[$0]...]) })
        step.prefixes = rows.indices.map { base.kv[$0].prefix(subject[$0]) }
        step.resume = base.residual!.suffix(from: subject)
        step.residualDelta = Intervention(layer: layer, vector: delta, at: subject.enumerated().map { TokenPosition(row: $0, pos: $1) })
        step.logitsAt = rows.indices.flatMap { r in (subject[r]..<rows[r].count).map { TokenPosition(row: r, pos: $0) } }
        let out = try fx.model.forward(step)
        var worst: Float = 0
        for (i, p) in step.logitsAt.enumerated() {
            let start = rows[..<p.row].reduce(0) { $0 + $1.count } + p.pos
            worst = max(worst, maxAbsDiff(out.logits[i], expected.logits[start]))
        }
        print("\(arch) cached ROME step max abs diff \(worst)")
        #expect(worst <= 1e-5)
    }

    @Test(arguments: fixtureArchs) func greedyDecodeMatchesFullRecompute(arch: String) throws {
        let fx = try FixtureModel(arch)
        let prompts = try [Array(fx.rows[0].prefix(3)), fx.rows[1]]
        var rng = SeededGenerator(seed: 1)
        let got = try Generator(model: fx.model).generate(prompts: prompts, maxNewTokens: 6, rng: &rng)
        for (r, p) in prompts.enumerated() {
            var seq = p
            for _ in 0..<6 {
                let logits = try fx.model.forward(ForwardBatch(sequences: [seq], logitsAt: [TokenPosition(row: 0, pos: seq.count - 1)])).logits[0]
                seq.append(logits.indices.max { logits[$0] < logits[$1] }!)
            }
            #expect(got[r] == Array(seq[p.count...]), "\(arch) row \(r)")
        }
    }

    @Test func topKSamplingIsSeededAndStaysInTopK() throws {
        let fx = try FixtureModel("llama")
        let prompt = try Array(fx.rows[2].prefix(4))
        let gen = Generator(model: fx.model)
        var a = SeededGenerator(seed: 42), b = SeededGenerator(seed: 42), c = SeededGenerator(seed: 7)
        let prompts = Array(repeating: prompt, count: 6)
        let s1 = try gen.generate(prompts: prompts, maxNewTokens: 5, sampling: .topK(5), rng: &a)
        let s2 = try gen.generate(prompts: prompts, maxNewTokens: 5, sampling: .topK(5), rng: &b)
        let s3 = try gen.generate(prompts: prompts, maxNewTokens: 5, sampling: .topK(5), rng: &c)
        #expect(s1 == s2)
        #expect(s1 != s3)
        #expect(Set(s1).count > 1, "six top-5 samples should not all agree")
        for row in s1 {
            var seq = prompt
            for t in row {
                let l = try fx.model.forward(ForwardBatch(sequences: [seq], logitsAt: [TokenPosition(row: 0, pos: seq.count - 1)])).logits[0]
                let top5 = Set(l.indices.sorted { l[$0] > l[$1] }.prefix(5))
                #expect(top5.contains(t))
                seq.append(t)
            }
        }
        var g = SeededGenerator(seed: 3), h = SeededGenerator(seed: 3)
        #expect(try gen.generate(prompts: [prompt], maxNewTokens: 4, sampling: .topK(1), rng: &g)
            == gen.generate(prompts: [prompt], maxNewTokens: 4, rng: &h))
    }
}
