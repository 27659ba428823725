import Foundation
import Formats
import Patch
import Testing
import TestSupport

/// The issue #13 options as a user meets them: `wilke show` says what produced an edit (null space,
/// norm anchor), and bad combinations of the new flags end in a one-line error before any work.
@Suite("edit options CLI", .serialized)
struct EditOptionsCLITests {
    @Test(.enabled(if: RealModel.available))
    func showPrintsTheEditOptions() throws {
        let dir = try TestPaths.scratch("edit-options")
        defer { try? FileManager.default.removeItem(at: dir) }
        let m = try Checkpoint.open(RealModel.path)
        let name = "blk.5.ffn_down.weight", t = m.tensor(name)!
        let base = m.tensorBytes(t)
        let u = (0..<base.rows).map { Float($0 % 7) * 1e-3 }, v = (0..<base.cols).map { Float($0 % 5) * 1e-3 }
        var b = PatchBuilder(architecture: "llama", format: "gguf")
        let hp = ["preserve": "null-space", "null_space_threshold": "0.02", "null_space_l2": "10.0", "null_space_rank": "1190",
                  "preserved_keys": "3", "norm_anchor": "nas", "anchor_references": "8", "anchor_norm": "9.5", "v_star_norm": "12.25"]
        try b.add(tensor: name, layout: t.stepLayout, base: base, u: u, v: v, rank: 1,
                  edits: [EditRecord(requests: [RecordedRequest(prompt: "{} plays", subject: "S", targetNew: "T")], method: "wilke",
                                     layer: 5, hyperParameters: hp)])
        let p = dir.appendingPathComponent("ns.wpatch").path
        try Data(try b.build().encode()).write(to: URL(fileURLWithPath: p))
        let shown = try runWilke(["show", p])
        #expect(shown.status == 0, "\(shown.stderr)")
        #expect(shown.stdout.contains("options: preserve null-space (threshold 0.02, L2 10.0, rank 1190, earlier keys 3); "
                                      + "norm anchor ‖v*‖ 12.25 → 9.5 (8 reference facts)"), "\(shown.stdout)")
        let json = try runWilke(["show", p, "--json"])
        #expect(json.stdout.contains("\"preserve\" : \"null-space\"") || json.stdout.contains("\"preserve\": \"null-space\""))
    }

    @Test(.enabled(if: RealModel.available))
    func badOptionCombinationsAreOneLineErrors() throws {
        let out = try TestPaths.scratch("edit-options-bad").appendingPathComponent("x.wpatch").path
        let fact = ["--prompt", "{} is located in the city of", "--subject", "The Eiffel Tower", "--target", "Rome", "-o", out]
        for (flags, message) in [
            (["--preserve", "null-space", "--no-covariance"], "--preserve null-space needs the key statistics"),
            (["--anchor-facts", "4"], "--anchor-facts goes with --norm-anchor"),
            (["--null-space-threshold", "0.1"], "--null-space-threshold, --null-space-energy and --null-space-l2 go with --preserve null-space"),
            (["--null-space-energy", "0.01"], "--null-space-threshold, --null-space-energy and --null-space-l2 go with --preserve null-space"),
            (["--preserve", "null-space", "--null-space-energy", "1.5"], "--null-space-energy must be between 0 and 1"),
            (["--preserve", "null-space", "--null-space-l2", "0"], "--null-space-l2 must be positive"),
        ] {
            let r = try runWilke(["edit", RealModel.path] + fact + flags)
            #expect(r.status != 0)
            #expect(r.stderr.contains(message), "\(flags): \(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: out))
        }
    }
}
