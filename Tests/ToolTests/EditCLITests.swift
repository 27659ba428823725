import Foundation
import Testing
import TestSupport

/// `wilke edit` refuses bad requests with one clear line, before any expensive work.
@Suite struct EditCLITests {
    func edit(_ extra: [String], output: String) throws -> RunResult {
        try runWilke(["edit", RealModel.path, "-o", output, "--no-covariance"] + extra)
    }

    @Test(.enabled(if: RealModel.available))
    func badRequestsAreOneLineErrors() throws {
        let dir = try TestPaths.scratch("edit-cli")
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("e.wpatch").path
        let cases: [([String], String)] = [
            (["--prompt", "The tower is in", "--subject", "Eiffel", "--target", "Rome"], "not found in the prompt"),
            (["--prompt", "{} is in", "--subject", "The Eiffel Tower", "--target", " "], "target is empty"),
            (["--prompt", "{} is in {}", "--subject", "X", "--target", "Y"], "exactly one is needed"),
            (["--prompt", "{} is in", "--subject", "X", "--target", "Y", "--method", "rome", "--layer", "99"], "layer 99 does not exist"),
            (["--prompt", "{} is in", "--subject", "X"], "--target"),
            (["--prompt", "{} is in", "--subject", "X", "--target", "Y", "--scan", "quick"], "--scan"),
            (["--prompt", "{} is in", "--subject", "X", "--target", "Y", "--scan-top", "0"], "--scan-top must be at least 1"),
            (["--prompt", "{} is in", "--subject", "X", "--target", "Y", "--method", "rome", "--scan-top", "2"], "--scan-top goes with --method wilke"),
        ]
        for (args, message) in cases {
            let r = try edit(args, output: out)
            #expect(r.status != 0, "\(args)")
            #expect(r.stderr.contains(message), "\(args): \(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: out))
        }
        FileManager.default.createFile(atPath: out, contents: Data("keep".utf8))
        let r = try edit(["--prompt", "{} is in", "--subject", "X", "--target", "Y"], output: out)
        #expect(r.status != 0)
        #expect(r.stderr.contains("already exists"))
        #expect(try String(contentsOfFile: out, encoding: .utf8) == "keep")
    }
}
