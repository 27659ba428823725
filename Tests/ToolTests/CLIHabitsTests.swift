import Foundation
import Formats
import Testing
import TestSupport

/// `-` for standard input and output, and progress lines when stderr is not a terminal (issue #15).
@Suite("CLI habits", .serialized)
struct CLIHabitsTests {
    @Test(.enabled(if: RealModel.available))
    func dashIsStdinAndStdout() throws {
        let dir = try PatchCLITests.setUp()
        defer { try? FileManager.default.removeItem(at: dir) }
        let wilke = wilkeBinary().path
        let a = dir.appendingPathComponent("p.wpatch").path, b = dir.appendingPathComponent("p2.wpatch").path
        // stack ... -o - | show -: the patch goes through the pipe, the stack's report to stderr.
        let piped = try runProcess("/bin/bash", ["-c", "\"$0\" stack \"$1\" \"$2\" -o - | \"$0\" show -", wilke, a, b])
        #expect(piped.status == 0, "\(piped.stderr)")
        #expect(piped.stdout.contains("2 tensors") && piped.stderr.contains("stacked 2 patches"), "\(piped.stdout) \(piped.stderr)")
        let file = try runWilke(["stack", a, b, "-o", dir.appendingPathComponent("ab.wpatch").path])
        #expect(file.status == 0)
        let id = try runWilke(["show", dir.appendingPathComponent("ab.wpatch").path]).stdout.split(separator: "\n").first
        #expect(piped.stdout.split(separator: "\n").first == id)
        // tokenize reads standard input without its final newline.
        let t = try runProcess("/bin/bash", ["-c", "echo 'The Eiffel Tower' | \"$0\" tokenize \"$1\" - --json", wilke, RealModel.path])
        let direct = try runWilke(["tokenize", RealModel.path, "The Eiffel Tower", "--json"])
        #expect(t.status == 0 && t.stdout == direct.stdout, "\(t.stdout) vs \(direct.stdout)")
    }

    @Test(.enabled(if: RealModel.available))
    func convertWritesTheDTypeAndReportsProgressInLogs() throws {
        let dir = try TestPaths.scratch("habits")
        defer { try? FileManager.default.removeItem(at: dir) }
        let hf = dir.appendingPathComponent("hf").path, bf16 = dir.appendingPathComponent("bf16").path
        #expect(try runWilke(["convert", RealModel.path, "-o", hf]).status == 0)
        let r = try runWilke(["convert", hf, "-o", bf16, "--dtype", "bf16"])  // stderr is a pipe here, not a terminal
        #expect(r.status == 0 && r.stderr.contains("convert 272/272"), "\(r.stderr)")
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: bf16 + "/config.json"))) as? [String: Any]
        #expect(config?["dtype"] as? String == "bfloat16" && config?["torch_dtype"] as? String == "bfloat16")
        #expect(try Checkpoint.open(bf16).tensors.first?.dtype == .bf16)
    }
}
