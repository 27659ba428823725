import Foundation

/// Scores of one edit, measured right after the edit and before its roll-back, on its own record only
/// (ALGORITHM.md §4.3). Each value is a fraction in [0, 1]; nil when the record has no such prompts.
public struct EditScores: Codable, Equatable, Sendable {
    /// ES: the filled prompt yields " " + target_new exactly (1 or 0).
    public var es: Double
    /// GS: fraction of the paraphrase prompts that yield target_new exactly.
    public var gs: Double?
    /// LS: fraction of the neighbourhood prompts that still yield the neighbourhood answer exactly.
    public var ls: Double?

    public init(es: Double, gs: Double?, ls: Double?) { self.es = es; self.gs = gs; self.ls = ls }

    /// From the per-prompt exact-match outcomes.
    public init(rewrite: Bool, paraphrases: [Bool], neighbours: [Bool]) {
        es = rewrite ? 1 : 0
        gs = EvalMetrics.fraction(paraphrases)
        ls = EvalMetrics.fraction(neighbours)
    }
}

/// The paper's table row at one checkpoint n: ES/GS/LS averaged over edits 1..n, ERS/ORS measured
/// after the n-th roll-back, and S their floored harmonic mean.
public struct CheckpointScores: Codable, Equatable, Sendable {
    public var n: Int
    public var s: Double
    public var es: Double
    public var gs: Double
    public var ls: Double
    public var ers: Double
    public var ors: Double

    public init(n: Int, s: Double, es: Double, gs: Double, ls: Double, ers: Double, ors: Double) {
        self.n = n; self.s = s; self.es = es; self.gs = gs; self.ls = ls; self.ers = ers; self.ors = ors
    }
}

/// Pure functions of the lifelong-editing metrics (ALGORITHM.md §4.3).
public enum EvalMetrics {
    /// What a zero becomes inside the harmonic mean's reciprocal sum (the reference notebooks' 1e-4).
    public static let zeroFloor = 1e-4

    /// Fraction of true outcomes; nil for no outcomes.
    public static func fraction(_ outcomes: [Bool]) -> Double? {
        outcomes.isEmpty ? nil : Double(outcomes.filter { $0 }.count) / Double(outcomes.count)
    }

    /// Mean of the non-nil values; 0 when there are none.
    public static func mean(_ values: [Double?]) -> Double {
        let present = values.compactMap { $0 }
        return present.isEmpty ? 0 : present.reduce(0, +) / Double(present.count)
    }

    /// S = k / Σ 1/x', x' = 1e-4 when x == 0 (so one zero metric drags S to about 1e-4·k, not to a
    /// division by zero).
    public static func harmonicScore(_ values: [Double]) -> Double {
        precondition(!values.isEmpty, "harmonic mean of no values")
        let reciprocal = values.reduce(0.0) { $0 + 1 / ($1 == 0 ? zeroFloor : $1) }
        return Double(values.count) / reciprocal
    }

    /// The checkpoints {1, 2, 4, …} up to n, plus n itself when it is not a power of two.
    public static func checkpoints(upTo n: Int) -> [Int] {
        guard n >= 1 else { return [] }
        var out: [Int] = []
        var c = 1
        while c <= n { out.append(c); c *= 2 }
        if out.last != n { out.append(n) }
        return out
    }

    /// The table row after `edits.count` edits, with the retention fractions measured then.
    /// - Parameters:
    ///   - edits: per-edit scores of edits 1..n (n = edits.count ≥ 1).
    ///   - ers: fraction of the n edited facts whose original target is reproduced after the roll-backs.
    ///   - ors: fraction of the held-out facts still reproduced.
    public static func checkpoint(edits: [EditScores], ers: Double, ors: Double) -> CheckpointScores {
        precondition(!edits.isEmpty, "a checkpoint needs at least one edit")
        let es = mean(edits.map(\.es)), gs = mean(edits.map(\.gs)), ls = mean(edits.map(\.ls))
        return CheckpointScores(n: edits.count, s: harmonicScore([es, gs, ls, ers, ors]),
                                es: es, gs: gs, ls: ls, ers: ers, ors: ors)
    }
}
