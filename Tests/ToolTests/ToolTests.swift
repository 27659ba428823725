import Foundation
import Testing
import TestSupport

/// Runs the built `wilke` binary the way a user does and checks exit codes and output.
@Suite struct ToolTests {
    @Test func helpListsTheTool() throws {
        let r = try runWilke(["--help"])
        #expect(r.status == 0)
        #expect(r.stdout.contains("USAGE: wilke"))
    }
}

struct RunResult { var status: Int32; var stdout: String; var stderr: String }

/// The `wilke` executable next to the test bundle (SwiftPM puts both in the same build folder).
func wilkeBinary() -> URL {
    var dir = Bundle.main.bundleURL
    for _ in 0..<4 {
        let candidate = dir.appendingPathComponent("wilke")
        if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        dir = dir.deletingLastPathComponent()
    }
    return URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../.build/debug/wilke").standardized
}

func runWilke(_ args: [String], environment: [String: String] = [:]) throws -> RunResult {
    let p = Process()
    p.executableURL = wilkeBinary()
    p.arguments = args
    var env = ProcessInfo.processInfo.environment
    env.merge(environment) { $1 }
    p.environment = env
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    try p.run()
    let o = out.fileHandleForReading.readDataToEndOfFile()
    let e = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return RunResult(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
}

@Suite struct AskTokenizeCLITests {
    @Test(.enabled(if: RealModel.available))
    func askAnswersParis() throws {
        let r = try runWilke(["ask", RealModel.path, "The capital of France is", "-n", "3", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let obj = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        let first = (obj?["next_tokens"] as? [[String: Any]])?.first
        #expect(first?["piece"] as? String == " Paris")
        #expect(abs((first?["probability"] as? Double ?? 0) - 0.7725) < 0.01)
    }

    @Test(.enabled(if: RealModel.available))
    func badInputIsOneLine() throws {
        for args in [["ask", RealModel.path, ""], ["ask", "/nonexistent.gguf", "hi"], ["ask", RealModel.path, "hi", "-n", "-1"]] {
            let r = try runWilke(args)
            #expect(r.status != 0)
            #expect(!r.stderr.isEmpty)
        }
        let r = try runWilke(["ask", RealModel.path, ""])
        #expect(r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
    }

    @Test(.enabled(if: RealModel.available))
    func tokenizeJSON() throws {
        let r = try runWilke(["tokenize", RealModel.path, "The Eiffel Tower", "--json"])
        #expect(r.status == 0)
        let obj = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        #expect(obj?["ids"] as? [Int] == [504, 414, 46682, 18669])
    }
}
