import Foundation
import Testing
@testable import WilKE

/// The lifelong-editing metrics on hand-made cases whose answers are worked out by hand (ALGORITHM.md §4.3).
@Suite struct EvalMetricsTests {
    @Test func fractionAndMean() {
        #expect(EvalMetrics.fraction([]) == nil)
        #expect(EvalMetrics.fraction([true, false, true, true]) == 0.75)
        #expect(EvalMetrics.fraction([false, false]) == 0)
        // nil (a record without paraphrases) is left out of the average, not counted as 0.
        #expect(EvalMetrics.mean([1, nil, 0.5]) == 0.75)
        #expect(EvalMetrics.mean([nil, nil]) == 0)
    }

    @Test func editScoresFromOutcomes() {
        let s = EditScores(rewrite: true, paraphrases: [true, false], neighbours: [true, true, true, false, false,
                                                                                  true, true, true, true, true])
        #expect(s == EditScores(es: 1, gs: 0.5, ls: 0.8))
        let none = EditScores(rewrite: false, paraphrases: [], neighbours: [])
        #expect(none == EditScores(es: 0, gs: nil, ls: nil))
    }

    @Test func harmonicMean() {
        #expect(EvalMetrics.harmonicScore([1, 1, 1, 1, 1]) == 1)
        // 5 / (2 + 2 + 4 + 1 + 1) = 0.5
        #expect(abs(EvalMetrics.harmonicScore([0.5, 0.5, 0.25, 1, 1]) - 0.5) < 1e-15)
    }

    @Test func harmonicMeanFloorsZeros() {
        // One zero: 5 / (1e4 + 4), not a division by zero.
        let one = EvalMetrics.harmonicScore([0, 1, 1, 1, 1])
        #expect(abs(one - 5 / 10_004.0) < 1e-15)
        // All zeros: 5 / (5·1e4) = 1e-4, the reference's floor value.
        #expect(abs(EvalMetrics.harmonicScore([0, 0, 0, 0, 0]) - 1e-4) < 1e-18)
        // A tiny non-zero value is not floored.
        let tiny = EvalMetrics.harmonicScore([1e-6, 1, 1, 1, 1])
        #expect(abs(tiny - 5 / (1e6 + 4)) < 1e-15)
        print("S with one zero \(one), with 1e-6 \(tiny)")
    }

    @Test func checkpointsArePowersOfTwoUpToN() {
        #expect(EvalMetrics.checkpoints(upTo: 0) == [])
        #expect(EvalMetrics.checkpoints(upTo: 1) == [1])
        #expect(EvalMetrics.checkpoints(upTo: 8) == [1, 2, 4, 8])
        #expect(EvalMetrics.checkpoints(upTo: 10) == [1, 2, 4, 8, 10])
        #expect(EvalMetrics.checkpoints(upTo: 1024).count == 11)
    }

    @Test func checkpointAveragesEditsOneToN() {
        let edits = [EditScores(es: 1, gs: 1, ls: 0.6), EditScores(es: 0, gs: 0.5, ls: 1),
                     EditScores(es: 1, gs: nil, ls: 0.8), EditScores(es: 1, gs: 0, ls: 0.6)]
        let row = EvalMetrics.checkpoint(edits: edits, ers: 0.5, ors: 0.75)
        #expect(row.n == 4)
        #expect(row.es == 0.75)
        #expect(row.gs == 0.5)  // (1 + 0.5 + 0) / 3: the record without paraphrases is left out
        #expect(abs(row.ls - 0.75) < 1e-15)
        // 5 / (1/0.75 + 1/0.5 + 1/0.75 + 1/0.5 + 1/0.75) = 5 / 8 = 0.625
        #expect(abs(row.s - 0.625) < 1e-15)
    }

    @Test func tableTakesRetentionFromCheckpointEntries() {
        func entry(_ i: Int, _ es: Double, ers: Double? = nil, ors: Double? = nil) -> EvalLogEntry {
            EvalLogEntry(index: i, caseID: i, prompt: "{} is in", subject: "X", targetNew: "A", targetTrue: "B", layer: 3,
                         rollbackLayer: 3, scores: EditScores(es: es, gs: 1, ls: 1), ers: ers, ors: ors, steps: 2 * i, seconds: 0)
        }
        let log = [entry(1, 1, ers: 1, ors: 1), entry(2, 0, ers: 0.5, ors: 1), entry(3, 1)]
        let rows = LifelongEval.table(log)
        #expect(rows.map(\.n) == [1, 2])
        #expect(rows[0].s == 1)
        #expect(rows[1].es == 0.5 && rows[1].ers == 0.5)
        // 5 / (2 + 1 + 1 + 2 + 1) = 5/7
        #expect(abs(rows[1].s - 5.0 / 7) < 1e-15)
    }

    @Test func shuffleIsASeededPermutation() {
        let items = Array(0..<100)
        let a = LifelongEval.shuffled(items, seed: 9)
        #expect(a == LifelongEval.shuffled(items, seed: 9))
        #expect(a.sorted() == items)
        #expect(a != items)
        #expect(a != LifelongEval.shuffled(items, seed: 10))
        #expect(LifelongEval.shuffled([Int](), seed: 1).isEmpty)
    }

    @Test func argmaxTakesTheFirstOnTies() {
        #expect(ExactMatch.argmax([0, 3, 1, 3]) == 1)
        #expect(ExactMatch.argmax([-2]) == 0)
    }
}
