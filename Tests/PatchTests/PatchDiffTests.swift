import Foundation
import Formats
import Testing
@testable import Patch

@Suite("patch diff")
struct PatchDiffTests {
    /// Dense ‖ΔA − ΔB‖_F and cosine in f64 over the logical matrix, for checking the Gram-matrix path.
    func dense(_ steps: [PatchStep], rows: Int, cols: Int) -> [Double] {
        var d = [Double](repeating: 0, count: rows * cols)
        for s in steps { for i in 0..<rows { for j in 0..<cols { for t in 0..<s.rank {
            d[i * cols + j] += Double(s.u[i * s.rank + t] * s.scale) * Double(s.v[j * s.rank + t])
        } } } }
        return d
    }

    @Test func normsMatchDenseComputation() throws {
        var rng = SeededRNG(seed: 8)
        let m = Gen.tensor(.f32, rows: 20, cols: 30, rng: &rng)
        var ba = PatchBuilder(architecture: "llama", format: "gguf"), bb = ba
        var (u, v) = Gen.factors(rows: 20, cols: 30, rank: 2, relative: 0.1, rng: &rng)
        let a1 = try ba.add(tensor: "w", layout: .rowMajor, base: m, u: u, v: v, rank: 2)
        (u, v) = Gen.factors(rows: 20, cols: 30, rank: 1, relative: 0.1, rng: &rng)
        try ba.add(tensor: "w", layout: .rowMajor, base: a1, u: u, v: v, rank: 1, scale: 3)
        (u, v) = Gen.factors(rows: 20, cols: 30, rank: 3, relative: 0.1, rng: &rng)
        try bb.add(tensor: "w", layout: .rowMajor, base: m, u: u, v: v, rank: 3)
        let a = ba.build(), b = bb.build()
        let c = PatchDiff.compare(a, b)
        let da = dense(a.steps, rows: 20, cols: 30), db = dense(b.steps, rows: 20, cols: 30)
        let diff = zip(da, db).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }.squareRoot()
        let na = da.reduce(0) { $0 + $1 * $1 }.squareRoot(), nb = db.reduce(0) { $0 + $1 * $1 }.squareRoot()
        let cos = zip(da, db).reduce(0) { $0 + $1.0 * $1.1 } / (na * nb)
        let t = try #require(c.tensors.first)
        print("diff: dense ‖ΔA−ΔB‖ \(diff) vs gram \(t.differenceNorm!), cosine \(cos) vs \(t.cosine!)")
        #expect(abs(t.differenceNorm! - diff) <= 1e-9 * diff)
        #expect(abs(t.normA - na) <= 1e-9 * na && abs(t.normB - nb) <= 1e-9 * nb)
        #expect(abs(t.cosine! - cos) <= 1e-9)
        #expect(t.stepsA == 2 && t.stepsB == 1)
        let same = PatchDiff.compare(a, a).tensors[0]
        #expect(same.differenceNorm! <= 1e-9 * same.normA && abs(same.cosine! - 1) < 1e-12)
        #expect(c.sameArchitecture && c.baseMismatches.isEmpty)
    }

    @Test func editsAndConflicts() throws {
        var rng = SeededRNG(seed: 9)
        let m = Gen.tensor(.f16, rows: 8, cols: 16, rng: &rng)
        let r1 = RecordedRequest(prompt: "{} plays", subject: "LeBron", targetNew: "football")
        let r1b = RecordedRequest(prompt: "{} plays", subject: "LeBron", targetNew: "tennis")
        let r2 = RecordedRequest(prompt: "The capital of {} is", subject: "France", targetNew: "Rome")
        let r3 = RecordedRequest(prompt: "{} was born in", subject: "Ada", targetNew: "Paris")
        func patch(_ edits: [EditRecord], tensor: String = "w") throws -> Patch {
            var b = PatchBuilder(architecture: "llama", format: "gguf")
            let (u, v) = Gen.factors(rows: 8, cols: 16, rank: 1, relative: 0.1, rng: &rng)
            try b.add(tensor: tensor, layout: .rowMajor, base: m, u: u, v: v, rank: 1, edits: edits)
            return b.build()
        }
        let a = try patch([EditRecord(requests: [r1, r2], method: "wilke", layer: 3)])
        let b = try patch([EditRecord(requests: [r1b], method: "wilke", layer: 3),
                           EditRecord(requests: [r2], method: "rome", layer: 5), EditRecord(requests: [r3], method: "wilke", layer: 3)], tensor: "x")
        let c = PatchDiff.compare(a, b)
        #expect(c.conflicts == [.init(subject: "LeBron", prompt: "{} plays", targetsA: ["football"], targetsB: ["tennis"])])
        #expect(c.editsAdded.map(\.request) == [r3])
        #expect(c.editsRemoved.isEmpty)
        #expect(Set(c.editsChanged.map(\.after.request)) == [r1b, r2])
        #expect(c.editsChanged.first { $0.after.request == r2 }?.before.method == "wilke")
        #expect(c.tensors.map(\.name) == ["w", "x"])
        #expect(c.tensors[0].stepsB == 0 && c.tensors[0].cosine == nil && c.tensors[0].differenceNorm == c.tensors[0].normA)
    }
}
