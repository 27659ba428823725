import Foundation
import Formats
import Testing
import TestSupport
@testable import Patch

/// A patch made on the tiny GGUF (Q4_1, permuted Q rows, F16) re-targeted to the Hugging Face
/// directories converted from it (f32, bf16) and to another promotion type: it applies there, gives
/// the same weights, reverts byte-exactly; another model's weights are refused.
@Suite("patch rebase")
struct PatchRebaseTests {
    @Test func ggufPatchOntoConvertedDirectories() throws {
        let dir = try TestPaths.scratch("rebase")
        defer { try? FileManager.default.removeItem(at: dir) }
        func path(_ n: String) -> String { dir.appendingPathComponent(n).path }
        try TinyModel.writeGGUF(path("tiny.gguf"))
        let gguf = try Checkpoint.open(path("tiny.gguf"))
        let p = try TinyModel.patch(gguf)
        try CheckpointPatching.apply([p], to: gguf, output: path("edited.gguf"))
        let edited = try Checkpoint.open(path("edited.gguf"))
        for dtype in [DType.f32, .bf16] {
            let hfPath = path("hf-\(dtype.name)")
            try Converter.ggufToHuggingFace(gguf, output: hfPath, dtype: dtype, overwrite: false)
            let hf = try Checkpoint.open(hfPath)
            let (q, comparisons, dropped) = try PatchRebase.rebase(p, from: gguf, onto: hf)
            #expect(dropped == 0 && comparisons.count == 3 && comparisons.allSatisfy { $0.worstRatio <= 1 })
            #expect(q.base.format == "safetensors" && q.steps.count == p.steps.count)
            #expect(zip(p.steps, q.steps).allSatisfy { $0.u == $1.u && $0.v == $1.v && $0.scale == $1.scale && $0.edits == $1.edits })
            let out = path("hf-\(dtype.name)-edited")
            try CheckpointPatching.apply([q], to: hf, output: out)
            let e = try Checkpoint.open(out)
            if dtype == .f32 {
                // The same arithmetic on the same (dequantized) weights: the edited GGUF's values exactly.
                for name in ["blk.0.ffn_down.weight", "blk.0.attn_q.weight"] {
                    #expect(try e.logical(e.tensor(name)!) == (try edited.logical(edited.tensor(name)!)), "\(name)")
                }
            }
            try CheckpointPatching.revert([q], from: e, output: out + "-reverted")
            #expect(try treeSHA(out + "-reverted") == (try treeSHA(hfPath)))
        }
    }

    @Test func anotherModelIsRefused() throws {
        let dir = try TestPaths.scratch("rebase-other")
        defer { try? FileManager.default.removeItem(at: dir) }
        let a = dir.appendingPathComponent("a.gguf").path, b = dir.appendingPathComponent("b.gguf").path
        try TinyModel.writeGGUF(a, seed: 1)
        try TinyModel.writeGGUF(b, seed: 2)
        let ca = try Checkpoint.open(a)
        let p = try TinyModel.patch(ca)
        let cb = try Checkpoint.open(b)
        let error = #expect(throws: PatchError.self) { try PatchRebase.rebase(p, from: ca, onto: cb) }
        #expect("\(error.map { "\($0)" } ?? "")".contains("not the same weights"), "\(String(describing: error))")
        // The patch must apply to the base it claims.
        #expect(throws: PatchError.self) { try PatchRebase.rebase(p, from: try Checkpoint.open(b), onto: ca) }
    }

    @Test func promotionTypeIsChosen() throws {
        let dir = try TestPaths.scratch("rebase-promote")
        defer { try? FileManager.default.removeItem(at: dir) }
        func path(_ n: String) -> String { dir.appendingPathComponent(n).path }
        try TinyModel.writeGGUF(path("tiny.gguf"))
        let gguf = try Checkpoint.open(path("tiny.gguf"))
        let (q, _, _) = try PatchRebase.rebase(try TinyModel.patch(gguf), from: gguf, onto: gguf, promoteTo: .f16)
        #expect(q.steps.first { $0.tensor == "blk.0.ffn_down.weight" }?.resultDType == .f16)
        try CheckpointPatching.apply([q], to: gguf, output: path("f16.gguf"))
        #expect(try Checkpoint.open(path("f16.gguf")).tensor("blk.0.ffn_down.weight")?.dtype == .f16)
        try CheckpointPatching.revert([q], from: try Checkpoint.open(path("f16.gguf")), output: path("back.gguf"))
        #expect(try fileSHA(path("back.gguf")) == (try fileSHA(path("tiny.gguf"))))
    }
}
