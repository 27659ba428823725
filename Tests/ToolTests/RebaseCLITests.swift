import Foundation
import Formats
import Patch
import Testing
import TestSupport

/// `wilke rebase` and `wilke apply --promote` on the real SmolLM2 GGUF and its HF conversion.
@Suite("rebase CLI", .serialized)
struct RebaseCLITests {
    func path(_ dir: URL, _ n: String) -> String { dir.appendingPathComponent(n).path }

    @Test(.enabled(if: RealModel.available))
    func promoteAndRebase() throws {
        let dir = try PatchCLITests.setUp()
        defer { try? FileManager.default.removeItem(at: dir) }
        let p = path(dir, "p.wpatch")
        // --promote f16: the edited tensor is F16, the re-made patch beside the output reverts it.
        let e = path(dir, "e.gguf")
        let r = try runWilke(["apply", RealModel.path, p, "-o", e, "--promote", "f16"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try Checkpoint.open(e).tensor(PatchCLITests.tensor)?.dtype == .f16)
        #expect(try runWilke(["revert", e, e + ".wpatch", "-o", path(dir, "back.gguf")]).status == 0)
        #expect(try fileSHA(path(dir, "back.gguf")) == (try fileSHA(RealModel.path)))

        // The GGUF patch onto the converted directory: applies and reverts there.
        let hf = path(dir, "hf")
        #expect(try runWilke(["convert", RealModel.path, "-o", hf]).status == 0)
        let q = path(dir, "q.wpatch")
        let rb = try runWilke(["rebase", p, "--base", RealModel.path, "--onto", hf, "-o", q])
        #expect(rb.status == 0 && rb.stdout.contains("model.layers.15.mlp.down_proj.weight"), "\(rb.stdout) \(rb.stderr)")
        #expect(try runWilke(["apply", hf, q, "-o", path(dir, "hf-e")]).status == 0)
        #expect(try runWilke(["revert", path(dir, "hf-e"), q, "-o", path(dir, "hf-back")]).status == 0)
        #expect(try fileSHA(path(dir, "hf-back") + "/model.safetensors") == (try fileSHA(hf + "/model.safetensors")))

        // Onto other weights (the layer changed by as much as its own norm): refused, nothing written. A
        // 1% edit like p's stays inside Q4_1's rounding and cannot be told from a re-quantization.
        let big = path(dir, "big.wpatch"), other = path(dir, "hf-other")
        #expect(try runWilke(["dev", "gen-patch", hf, "--tensor", "model.layers.15.mlp.down_proj.weight", "--relative", "1", "--seed", "9", "-o", big]).status == 0)
        #expect(try runWilke(["apply", hf, big, "-o", other]).status == 0)
        let refused = try runWilke(["rebase", p, "--base", RealModel.path, "--onto", other, "-o", path(dir, "x.wpatch")])
        #expect(refused.status != 0 && refused.stderr.contains("not the same weights") && refused.stderr.split(separator: "\n").count == 1,
                "\(refused.stderr)")
        #expect(!FileManager.default.fileExists(atPath: path(dir, "x.wpatch")))
    }
}
