import Foundation
import Formats
import Testing
import TestSupport

/// `wilke eval --preserve null-space --norm-anchor` end to end on a tiny random llama (`wilke dev
/// gen-llama`, SmolLM2's tokenizer): statistics, null spaces and anchors computed, one edit and its
/// roll-back, the summary naming the algorithm, and the run's patch applying and reverting byte-exactly.
@Suite("eval options CLI", .serialized)
struct EvalOptionsCLITests {
    @Test(.enabled(if: RealModel.available && FileManager.default.fileExists(atPath: TestPaths.sharedData("counterfact/counterfact-edit.json"))))
    func evalWithNullSpaceAndNormAnchorRunsEndToEnd() throws {
        let dir = try TestPaths.scratch("eval-options")
        defer { try? FileManager.default.removeItem(at: dir) }
        func path(_ n: String) -> String { dir.appendingPathComponent(n).path }
        let env = ["WILKE_CACHE": path("cache")]
        let gen = try runWilke(["dev", "gen-llama", path("tiny.gguf"), "--like", RealModel.path, "--layers", "4", "--d-model", "64",
                                "--d-ff", "128", "--heads", "2", "--kv-heads", "1", "--dtype", "f32"], environment: env)
        #expect(gen.status == 0, "\(gen.stderr)")
        let run = try runWilke(["eval", path("tiny.gguf"), "--data", TestPaths.sharedData("counterfact/counterfact-edit.json"),
                                "--edits", "1", "--preserve", "null-space", "--null-space-threshold", EvalOptionsCLITests.threshold,
                                "--norm-anchor", "--anchor-facts", "2", "--steps", "3", "--stats-tokens", "512", "--out", path("run")],
                               environment: env)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stderr.contains("null space of rank"), "\(run.stderr)")
        let summary = try String(contentsOfFile: path("run/summary.json"), encoding: .utf8)
        #expect(summary.contains("null-space (threshold") && summary.contains("norm anchor (2 reference facts)"), "\(summary)")
        let shown = try runWilke(["show", path("run/run.wpatch")])
        #expect(shown.stdout.contains("options: preserve null-space") && shown.stdout.contains("norm anchor ‖v*‖"), "\(shown.stdout)")
        // Edit then roll-back: the second step's record saw the first edit's key.
        #expect(shown.stdout.contains("earlier keys 0") && shown.stdout.contains("earlier keys 1"), "\(shown.stdout)")
        let apply = try runWilke(["apply", path("tiny.gguf"), path("run/run.wpatch"), "-o", path("edited.gguf")], environment: env)
        #expect(apply.status == 0, "\(apply.stderr)")
        let revert = try runWilke(["revert", path("edited.gguf"), path("run/run.wpatch"), "-o", path("reverted.gguf")], environment: env)
        #expect(revert.status == 0, "\(revert.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: path("reverted.gguf"))) == Data(contentsOf: URL(fileURLWithPath: path("tiny.gguf"))))
        // The run overlaid with itself: a panel per score, a line per run; a directory without a
        // summary is named in a one-line error and leaves no figure behind.
        let cmp = try runWilke(["compare", path("run"), path("run"), "--names", "x,y", "-o", path("overlay.svg")])
        #expect(cmp.status == 0, "\(cmp.stderr)")
        let svg = try String(contentsOfFile: path("overlay.svg"), encoding: .utf8)
        #expect(svg.components(separatedBy: "<polyline").count - 1 == 12 && svg.contains("data-name=\"y\""))
        let bad = try runWilke(["compare", path("cache"), "-o", path("bad.svg")])
        #expect(bad.status != 0 && bad.stderr.contains("summary.json") && !FileManager.default.fileExists(atPath: path("bad.svg")), "\(bad.stderr)")
    }

    /// About the median eigenvalue of the random model's C_l (1e-4 at layers 0 and 1, measured), so the
    /// null space is about half of d_ff: AlphaEdit's 2e-2 is above every eigenvalue of this model.
    static let threshold = "1e-4"
}
