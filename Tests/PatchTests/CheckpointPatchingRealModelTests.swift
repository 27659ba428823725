import Foundation
import Formats
import Testing
import TestSupport
@testable import Patch

/// The SmolLM2 GGUF with a rank-one edit of realistic size on blk.15.ffn_down.weight (Q4_1,
/// [576, 1536]): apply gives a valid GGUF, revert gives back the file's SHA-256; the same on the model
/// converted to a Hugging Face directory.
@Suite("checkpoint patching on SmolLM2", .serialized)
struct CheckpointPatchingRealModelTests {
    static let tensor = "blk.15.ffn_down.weight"

    /// A rank-one step with ‖Δ‖ ≈ 1% of ‖W‖, from seeded random factors.
    static func rankOnePatch(_ ckpt: Checkpoint, name: String) throws -> Patch {
        let t = ckpt.tensor(name)!
        let base = ckpt.tensorBytes(t)
        let w = try ElementCodec.decode(base)
        let norm = w.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
        var rng = SeededRNG(seed: 15)
        var u = (0..<base.rows).map { _ in rng.normal() }, v = (0..<base.cols).map { _ in rng.normal() }
        let nu = u.reduce(0.0) { $0 + Double($1 * $1) }.squareRoot(), nv = v.reduce(0.0) { $0 + Double($1 * $1) }.squareRoot()
        let c = Float((0.01 * norm / (nu * nv)).squareRoot())
        for i in u.indices { u[i] *= c }
        for j in v.indices { v[j] *= c }
        var b = PatchBuilder(architecture: ckpt.patchArchitecture, format: ckpt.patchFormat, metadata: ["tool": "test"])
        try b.add(tensor: t.name, layout: t.stepLayout, base: base, u: u, v: v, rank: 1,
                  edits: [EditRecord(requests: [RecordedRequest(prompt: "{} plays the sport of", subject: "LeBron James",
                                                                targetNew: "football", targetTrue: "basketball")],
                                     method: "rome", layer: 15)])
        return b.build()
    }

    @Test(.enabled(if: RealModel.available))
    func ggufApplyRevert() throws {
        let dir = try TestPaths.scratch("smollm2-patch")
        defer { try? FileManager.default.removeItem(at: dir) }
        let m = try Checkpoint.open(RealModel.path)
        let p = try Self.rankOnePatch(m, name: Self.tensor)
        let bytes = try p.encode()
        let tensorBytes = m.tensor(Self.tensor)!.byteCount
        print("patch \(bytes.count) bytes (\(String(format: "%.2f", 100 * Double(bytes.count) / Double(tensorBytes)))% of the Q4_1 tensor); residue \(p.steps[0].residue.count) blocks")

        let edited = dir.appendingPathComponent("edited.gguf").path
        let report = try CheckpointPatching.apply([p], to: m, output: edited)
        #expect(report.typeChanges == [Self.tensor])
        let e = try Checkpoint.open(edited)
        #expect(e.tensors.count == m.tensors.count)
        #expect(e.tensor(Self.tensor)?.dtype == .f32)
        #expect(try Provenance.read(e).map(\.id) == [p.id])
        for t in m.tensors where t.name != Self.tensor { #expect(e.data(e.tensor(t.name)!).elementsEqual(m.data(t)), "\(t.name)") }
        #expect(try e.tensorBytes(e.tensor(Self.tensor)!) == TensorDelta.apply(p.steps[0], to: m.tensorBytes(m.tensor(Self.tensor)!)))
        #expect(try CheckpointPatching.verify(p, against: e).state == .applied)

        let reverted = dir.appendingPathComponent("reverted.gguf").path
        try CheckpointPatching.revert([p], from: e, output: reverted)
        #expect(try fileSHA(reverted) == fileSHA(RealModel.path))

        // Extraction from the two files reproduces the edit exactly.
        let q = try CheckpointDiff.extract(from: m, to: e)
        print("extracted: rank \(q.steps[0].rank), \(q.steps[0].forwardResidue.count) forward fix-ups, \(try q.encode().count) bytes")
        #expect(q.steps.count == 1 && q.steps[0].rank == 1)
        #expect(try TensorDelta.apply(q.steps[0], to: m.tensorBytes(m.tensor(Self.tensor)!)) == e.tensorBytes(e.tensor(Self.tensor)!))
    }

    @Test(.enabled(if: RealModel.available))
    func safetensorsApplyRevert() throws {
        let dir = try TestPaths.scratch("smollm2-hf-patch")
        defer { try? FileManager.default.removeItem(at: dir) }
        let hf = dir.appendingPathComponent("hf").path
        try Converter.ggufToHuggingFace(try Checkpoint.open(RealModel.path), output: hf, dtype: .bf16, overwrite: false)
        let m = try Checkpoint.open(hf)
        let name = "model.layers.15.mlp.down_proj.weight"
        let p = try Self.rankOnePatch(m, name: name)
        print("bf16 patch \(try p.encode().count) bytes")
        let original = try treeSHA(hf)
        let edited = dir.appendingPathComponent("edited").path
        try CheckpointPatching.apply([p], to: m, output: edited)
        let e = try Checkpoint.open(edited)
        #expect(e.tensor(name)?.dtype == .bf16)
        #expect(try Provenance.read(e).map(\.id) == [p.id])
        let reverted = dir.appendingPathComponent("reverted").path
        try CheckpointPatching.revert([p], from: e, output: reverted)
        #expect(try treeSHA(reverted) == original)
        // In place on the copy: no type changes in safetensors.
        try CheckpointPatching.apply([p], to: try Checkpoint.open(reverted), output: nil)
        #expect(try treeSHA(reverted) == treeSHA(edited))
    }
}
