import Foundation
import Testing

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
