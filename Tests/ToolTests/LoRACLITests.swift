import Foundation
import Formats
import Patch
import Testing
import TestSupport

/// `wilke export` / `wilke import` on the real SmolLM2 GGUF: an f32 adapter reproduces the patch's
/// logits exactly, import gives back the same arithmetic, and bad adapters end in one line, nothing written.
@Suite("LoRA CLI", .serialized)
struct LoRACLITests {
    func path(_ dir: URL, _ n: String) -> String { dir.appendingPathComponent(n).path }

    @Test(.enabled(if: RealModel.available))
    func exportImportRoundTrip() throws {
        let dir = try PatchCLITests.setUp()
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try runWilke(["export", path(dir, "p.wpatch"), "--base", RealModel.path, "-o", path(dir, "p-lora.gguf"), "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let obj = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        // The adapter merged by the fma chain vs the patch as a low-rank term in memory: f32 rounding only.
        #expect((obj?["max_logit_difference"] as? Double ?? 1) < 1e-4, "\(r.stdout)")
        #expect(obj?["prompts"] as? Int == 1)
        let g = try GGUFFile(path: path(dir, "p-lora.gguf"))
        #expect(g.tensor(named: PatchCLITests.tensor + ".lora_a")?.ne == [1536, 1])
        #expect(g.tensor(named: PatchCLITests.tensor + ".lora_b")?.ne == [1, 576])

        let bf16 = try runWilke(["export", path(dir, "p.wpatch"), "--base", RealModel.path, "-o", path(dir, "p-peft"), "--dtype", "bf16", "--json"])
        let b = try JSONSerialization.jsonObject(with: Data(bf16.stdout.utf8)) as? [String: Any]
        #expect(bf16.status == 0 && (b?["max_logit_difference"] as? Double ?? 0) > 0 && (b?["max_weight_error"] as? Double ?? 0) > 0, "\(bf16.stdout)")

        let imp = try runWilke(["import", path(dir, "p-lora.gguf"), "--base", RealModel.path, "-o", path(dir, "back.wpatch")])
        #expect(imp.status == 0, "\(imp.stderr)")
        let original = try Patch.decode(Array(try Data(contentsOf: URL(fileURLWithPath: path(dir, "p.wpatch")))))
        let back = try Patch.decode(Array(try Data(contentsOf: URL(fileURLWithPath: path(dir, "back.wpatch")))))
        #expect(back.steps.count == 1 && back.steps[0].u == original.steps[0].u && back.steps[0].v == original.steps[0].v)
        #expect(back.steps[0].resultSHA256 == original.steps[0].resultSHA256)
        #expect(try runWilke(["verify", RealModel.path, path(dir, "back.wpatch")]).status == 0)
    }

    @Test(.enabled(if: RealModel.available))
    func badAdaptersWriteNothing() throws {
        let dir = try PatchCLITests.setUp()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = path(dir, "x.wpatch")
        // A model GGUF is not an adapter.
        var r = try runWilke(["import", RealModel.path, "--base", RealModel.path, "-o", out])
        #expect(r.status != 0 && r.stderr.contains("not a LoRA adapter") && r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: out))
        // A PEFT directory of another type.
        #expect(try runWilke(["export", path(dir, "p.wpatch"), "--base", RealModel.path, "-o", path(dir, "peft"), "--no-check"]).status == 0)
        let config = path(dir, "peft") + "/adapter_config.json"
        try String(contentsOfFile: config, encoding: .utf8).replacingOccurrences(of: "\"LORA\"", with: "\"IA3\"")
            .write(toFile: config, atomically: true, encoding: .utf8)
        r = try runWilke(["import", path(dir, "peft"), "--base", RealModel.path, "-o", out])
        #expect(r.status != 0 && r.stderr.contains("peft_type is IA3") && r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: out))
        // A patch for another base: export refuses, names the tensor.
        let m = try Checkpoint.open(RealModel.path)
        try Data(try PatchCLITests.rankOne(m, name: PatchCLITests.tensor, seed: 3, corruptBase: true).encode()).write(to: URL(fileURLWithPath: path(dir, "other.wpatch")))
        r = try runWilke(["export", path(dir, "other.wpatch"), "--base", RealModel.path, "-o", path(dir, "o.gguf")])
        #expect(r.status != 0 && r.stderr.contains(PatchCLITests.tensor) && r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: path(dir, "o.gguf")))
        // An existing output is kept without --force.
        try Data("keep".utf8).write(to: URL(fileURLWithPath: path(dir, "keep.gguf")))
        r = try runWilke(["export", path(dir, "p.wpatch"), "--base", RealModel.path, "-o", path(dir, "keep.gguf"), "--no-check"])
        let kept = try String(contentsOfFile: path(dir, "keep.gguf"), encoding: .utf8)
        #expect(r.status != 0 && kept == "keep")
        let left = try FileManager.default.contentsOfDirectory(atPath: dir.path)
        #expect(left.allSatisfy { !$0.hasPrefix(".") }, "\(left)")
    }
}
