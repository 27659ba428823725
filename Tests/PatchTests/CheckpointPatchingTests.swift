import Foundation
import Formats
import Testing
import TestSupport
@testable import Patch

/// File-level apply / revert / verify on a tiny llama checkpoint in the three layouts: GGUF, a Hugging
/// Face directory with one model.safetensors, and a sharded directory.
@Suite("checkpoint patching")
struct CheckpointPatchingTests {
    /// (kind, path of the base checkpoint) in a fresh scratch directory.
    static func makeBases() throws -> (dir: URL, gguf: String, hf: String, sharded: String) {
        let dir = try TestPaths.scratch("ckpt-patch")
        let gguf = dir.appendingPathComponent("tiny.gguf").path
        try TinyModel.writeGGUF(gguf)
        let hf = dir.appendingPathComponent("tiny-hf").path
        try Converter.ggufToHuggingFace(try Checkpoint.open(gguf), output: hf, dtype: .f32, overwrite: false)
        let sharded = dir.appendingPathComponent("tiny-sharded").path
        try shard(hf, into: sharded)
        return (dir, gguf, hf, sharded)
    }

    @Test(arguments: ["gguf", "hf", "sharded"])
    func applyThenRevertIsByteExact(kind: String) throws {
        let bases = try Self.makeBases()
        defer { try? FileManager.default.removeItem(at: bases.dir) }
        let base = kind == "gguf" ? bases.gguf : kind == "hf" ? bases.hf : bases.sharded
        let m = try Checkpoint.open(base)
        let p = try TinyModel.patch(m)
        let original = try treeSHA(base)

        let edited = bases.dir.appendingPathComponent("edited-\(kind)").path
        let report = try CheckpointPatching.apply([p], to: m, output: edited)
        #expect(report.tensors.count == 3)
        #expect(report.typeChanges == (kind == "gguf" ? [TinyModel.names(m).down] : []))
        #expect(try treeSHA(base) == original, "the input is untouched")

        // The output is a valid checkpoint whose touched tensors are exactly the library's results and
        // whose other tensors are byte-identical.
        let e = try Checkpoint.open(edited)
        let expected = try p.apply(to: tensorMap(m))
        let got = tensorMap(e)
        #expect(got == expected)
        #expect(try Provenance.read(e) == [AppliedPatch(id: p.id, summary: p.summary)])
        if kind == "sharded" {
            // Only the shard holding the touched tensors was rewritten.
            let before = try treeSHA(base), after = try treeSHA(edited)
            let rewritten = before.keys.filter { before[$0] != after[$0] }.sorted()
            print("sharded: rewritten \(rewritten)")
            #expect(after[Provenance.sidecarName] != nil)
            #expect(rewritten.allSatisfy { $0.hasSuffix(".safetensors") })
            let untouched = m.safetensors.filter { st in !st.tensors.contains { p.touchedTensors.contains($0.name) } }
                .map { ($0.path as NSString).lastPathComponent }
            #expect(!untouched.isEmpty)
            #expect(Set(rewritten).isDisjoint(with: untouched))
        }

        let reverted = bases.dir.appendingPathComponent("reverted-\(kind)").path
        try CheckpointPatching.revert([p], from: e, output: reverted)
        #expect(try treeSHA(reverted) == original, "revert gives back every file byte for byte")
    }

    @Test func inPlaceNeedsNoTypeChange() throws {
        let bases = try Self.makeBases()
        defer { try? FileManager.default.removeItem(at: bases.dir) }
        let g = try Checkpoint.open(bases.gguf)
        let before = try fileSHA(bases.gguf)
        #expect(throws: PatchError.typeChangeInPlace(tensor: "blk.0.ffn_down.weight", from: "Q4_1", to: "F32")) {
            try CheckpointPatching.apply([try TinyModel.patch(g)], to: g, output: nil)
        }
        #expect(try fileSHA(bases.gguf) == before)

        // safetensors keeps float types: in place works, and reverting in place restores the bytes.
        for path in [bases.hf, bases.sharded] {
            let original = try treeSHA(path)
            let p = try TinyModel.patch(try Checkpoint.open(path))
            try CheckpointPatching.apply([p], to: try Checkpoint.open(path), output: nil)
            #expect(try Provenance.read(try Checkpoint.open(path)).map(\.id) == [p.id])
            #expect(try treeSHA(path) != original)
            try CheckpointPatching.revert([p], from: try Checkpoint.open(path), output: nil)
            #expect(try treeSHA(path) == original)
        }
    }

    @Test func refusesWrongInputs() throws {
        let bases = try Self.makeBases()
        defer { try? FileManager.default.removeItem(at: bases.dir) }
        let m = try Checkpoint.open(bases.gguf)
        let p = try TinyModel.patch(m)
        let once = bases.dir.appendingPathComponent("once.gguf").path
        try CheckpointPatching.apply([p], to: m, output: once)

        // Applying twice: the record says so.
        #expect(throws: PatchError.alreadyApplied(id: p.id)) { try CheckpointPatching.apply([p], to: try Checkpoint.open(once), output: once + ".2") }
        // Output exists.
        #expect(throws: FormatError.outputExists(path: once)) { try CheckpointPatching.apply([p], to: m, output: once) }
        // Another model (different seed): the first tensor's hash mismatch names the tensor and both hashes.
        let other = bases.dir.appendingPathComponent("other.gguf").path
        try TinyModel.writeGGUF(other, seed: 2)
        let o = try Checkpoint.open(other)
        do {
            try CheckpointPatching.apply([p], to: o, output: other + ".out")
            Issue.record("applied to another model")
        } catch let PatchError.baseMismatch(tensor, expected, found) {
            #expect(p.touchedTensors.contains(tensor))
            #expect(expected != found)
        }
        #expect(!FileManager.default.fileExists(atPath: other + ".out"))
        // A patch for the safetensors layout does not apply to the GGUF.
        let hfPatch = try TinyModel.patch(try Checkpoint.open(bases.hf))
        #expect(throws: PatchError.self) { try CheckpointPatching.apply([hfPatch], to: m, output: other + ".out") }
        // Revert of a patch that was not applied.
        #expect(throws: PatchError.notApplied(id: p.id)) { try CheckpointPatching.revert([p], from: m, output: other + ".out") }
        // --force applies to a mismatching model anyway (the result is then not revertible by hash).
        try CheckpointPatching.apply([p], to: o, output: other + ".forced", options: PatchingOptions(force: true))
        #expect(try Checkpoint.open(other + ".forced").tensor("blk.0.ffn_down.weight")?.dtype == .f32)
    }

    @Test func verifyReportsEachState() throws {
        let bases = try Self.makeBases()
        defer { try? FileManager.default.removeItem(at: bases.dir) }
        let m = try Checkpoint.open(bases.gguf)
        let p = try TinyModel.patch(m)
        #expect(try CheckpointPatching.verify(p, against: m).state == .clean)
        let edited = bases.dir.appendingPathComponent("e.gguf").path
        try CheckpointPatching.apply([p], to: m, output: edited)
        let v = try CheckpointPatching.verify(p, against: try Checkpoint.open(edited))
        #expect(v.state == .applied)
        #expect(v.recorded)
        let other = bases.dir.appendingPathComponent("other.gguf").path
        try TinyModel.writeGGUF(other, seed: 3)
        let c = try CheckpointPatching.verify(p, against: try Checkpoint.open(other))
        #expect(c.state == .conflict)
        #expect(c.tensors.allSatisfy { $0.state == .conflict && $0.reason != nil })
    }

    /// diff(m, apply(m, p)) -o q, then apply(m, q) has the same tensors as apply(m, p), and q reverts.
    @Test(arguments: ["gguf", "hf"])
    func extractedPatchReproducesTheEdit(kind: String) throws {
        let bases = try Self.makeBases()
        defer { try? FileManager.default.removeItem(at: bases.dir) }
        let base = kind == "gguf" ? bases.gguf : bases.hf
        let m = try Checkpoint.open(base)
        let p = try TinyModel.patch(m)
        let viaP = bases.dir.appendingPathComponent("p").path
        try CheckpointPatching.apply([p], to: m, output: viaP)
        let q = try CheckpointDiff.extract(from: m, to: try Checkpoint.open(viaP))
        let qq = try Patch.decode(try q.encode())
        #expect(qq == q)
        for s in q.steps { print("extracted \(s.tensor): rank \(s.rank), forward fix-ups \(s.forwardResidue.count), revert fix-ups \(s.residue.count)") }
        #expect(q.touchedTensors == p.touchedTensors)
        #expect(q.steps.allSatisfy { $0.rank >= 1 && $0.rank <= 2 }, "the low-rank structure is found")
        let viaQ = bases.dir.appendingPathComponent("q").path
        try CheckpointPatching.apply([q], to: m, output: viaQ)
        #expect(tensorMap(try Checkpoint.open(viaQ)) == tensorMap(try Checkpoint.open(viaP)))
        let back = bases.dir.appendingPathComponent("back").path
        try CheckpointPatching.revert([q], from: try Checkpoint.open(viaQ), output: back)
        #expect(try treeSHA(back) == treeSHA(base))

        let cmp = try CheckpointDiff.compare(m, try Checkpoint.open(viaP))
        #expect(cmp.changed.map(\.name).sorted() == p.touchedTensors)
        for d in cmp.changed {
            print("compare \(d.name): max|Δ| \(d.maxAbs!), rel \(d.relativeFrobenius!), rank \(d.rank!)")
            #expect(d.rank == p.steps.filter { $0.tensor == d.name }.reduce(0) { $0 + $1.rank })
        }
    }

    /// A change that is not low rank becomes a rank-0 step whose forward residue carries it.
    @Test func denseChangeIsExtractedExactly() throws {
        var rng = SeededRNG(seed: 5)
        let base = Gen.tensor(.f16, rows: 32, cols: 64, rng: &rng)
        let target = Gen.tensor(.f16, rows: 32, cols: 64, rng: &rng)
        let step = try CheckpointDiff.extractStep("w", layout: .rowMajor, base: base, target: target, maxRank: 8)
        #expect(step.rank == 0)
        #expect(try TensorDelta.apply(step, to: base) == target)
        #expect(try TensorDelta.revert(step, from: target) == base)
        // And a vector (1 × n) change.
        let vb = Gen.tensor(.f32, rows: 1, cols: 64, rng: &rng), vt = Gen.tensor(.f32, rows: 1, cols: 64, rng: &rng)
        let vs = try CheckpointDiff.extractStep("v", layout: .rowMajor, base: vb, target: vt, maxRank: 8)
        #expect(try TensorDelta.apply(vs, to: vb) == vt)
    }

    /// The randomized SVD recovers a planted rank-3 matrix's singular values.
    @Test func lowRankFindsPlantedRank() throws {
        var rng = SeededRNG(seed: 11)
        let rows = 40, cols = 70, k = 3
        let (u, v) = Gen.factors(rows: rows, cols: cols, rank: k, relative: 1, rng: &rng)
        var d = [Float](repeating: 0, count: rows * cols)
        for i in 0..<rows { for j in 0..<cols { for t in 0..<k { d[i * cols + j] += u[i * k + t] * v[j * k + t] } } }
        let a = LowRankApproximation(d, rows: rows, cols: cols, sketch: 10)
        #expect(a.numericalRank() == 3)
        var err = 0.0, norm = 0.0
        for i in 0..<rows { for j in 0..<cols {
            var s = 0.0
            for t in 0..<3 { s += a.left[i * a.rank + t] * a.sigma[t] * a.right[j * a.rank + t] }
            err += (s - Double(d[i * cols + j])) * (s - Double(d[i * cols + j]))
            norm += Double(d[i * cols + j] * d[i * cols + j])
        } }
        print("planted rank 3: σ = \(a.sigma.prefix(5)), relative error \((err / norm).squareRoot())")
        #expect((err / norm).squareRoot() < 1e-5)
    }

    /// Squash now reproduces sequential application byte for byte (forward residue), on every type.
    @Test func squashEqualsStackOnFiles() throws {
        let bases = try Self.makeBases()
        defer { try? FileManager.default.removeItem(at: bases.dir) }
        let m = try Checkpoint.open(bases.gguf)
        let p = try TinyModel.patch(m)
        let k = TinyModel.names(m).k
        let squashed = try PatchStack.squash(p, bases: [k: m.tensorBytes(m.tensor(k)!)])
        #expect(squashed.steps.count == p.steps.count - 1)
        let a = bases.dir.appendingPathComponent("a").path, b = bases.dir.appendingPathComponent("b").path
        try CheckpointPatching.apply([p], to: m, output: a)
        try CheckpointPatching.apply([squashed], to: m, output: b)
        #expect(tensorMap(try Checkpoint.open(a)) == tensorMap(try Checkpoint.open(b)))
    }
}
