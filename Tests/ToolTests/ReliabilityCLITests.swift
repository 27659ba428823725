import Foundation
import Formats
import Patch
import Testing
import TestSupport

/// Issue #16 as a user meets it: concurrent writers, file identity (symlinks, mode, hard links), FIFOs,
/// control bytes from files, and verify's exit codes. Everything runs on the tiny llama fixture (an HF
/// directory of F32 tensors, so patches apply in place), through the built binary.
@Suite("reliability CLI", .serialized)
struct ReliabilityCLITests {
    static let down0 = "model.layers.0.mlp.down_proj.weight", down1 = "model.layers.1.mlp.down_proj.weight"

    /// A scratch dir with the model at m/ and two patches on different tensors, a.wpatch and b.wpatch.
    static func setUp() throws -> URL {
        let dir = try TestPaths.scratch("reliability")
        let m = dir.appendingPathComponent("m")
        try FileManager.default.createDirectory(at: m, withIntermediateDirectories: true)
        for name in ["config.json", "model.safetensors"] {
            try FileManager.default.copyItem(atPath: TestPaths.fixture("WilKETests", "models/llama/\(name)"), toPath: m.appendingPathComponent(name).path)
        }
        for (file, tensor, seed) in [("a.wpatch", down0, "1"), ("b.wpatch", down1, "2")] {
            let r = try runWilke(["dev", "gen-patch", m.path, "--tensor", tensor, "--seed", seed, "-o", dir.appendingPathComponent(file).path])
            guard r.status == 0 else { throw CLIFailure(r.stderr) }
        }
        return dir
    }

    struct CLIFailure: Error { let message: String; init(_ m: String) { message = m } }

    /// Ids recorded by `wilke log --json`.
    func logged(_ model: String) throws -> [String] {
        let r = try runWilke(["log", model, "--json"])
        let obj = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        return ((obj?["patches"] as? [[String: Any]]) ?? []).compactMap { $0["id"] as? String }
    }

    func patchID(_ path: String) throws -> String { try Patch.decode(Array(try Data(contentsOf: URL(fileURLWithPath: path)))).id }

    @Test func concurrentInPlaceAppliesLoseNothing() throws {
        let dir = try Self.setUp()
        defer { try? FileManager.default.removeItem(at: dir) }
        let m = dir.appendingPathComponent("m").path
        let a = dir.appendingPathComponent("a.wpatch").path, b = dir.appendingPathComponent("b.wpatch").path
        let ids = [a: try patchID(a), b: try patchID(b)]
        for round in 0..<6 {
            // Two writers started together; each either applies its patch or fails with one clear line.
            let results = try runConcurrently([["apply", m, a, "--in-place"], ["apply", m, b, "--in-place"]])
            var expected: Set<String> = []
            for (patch, r) in zip([a, b], results) {
                if r.status == 0 {
                    expected.insert(ids[patch]!)
                } else {
                    #expect(r.stderr.split(separator: "\n").filter { $0.hasPrefix("Error:") }.count == 1, "round \(round): \(r.stderr)")
                }
            }
            #expect(!expected.isEmpty, "round \(round): neither writer succeeded")
            #expect(Set(try logged(m)) == expected, "round \(round): a patch reported as applied is missing")
            for patch in [a, b] where expected.contains(ids[patch]!) {
                #expect(try runWilke(["verify", m, patch]).status == 2, "round \(round): the tensor does not hold the patch")
            }
            let back = try runWilke(["revert", m] + [a, b].filter { expected.contains(ids[$0]!) } + ["--in-place"])
            #expect(back.status == 0, "\(back.stderr)")
        }
    }

    @Test func concurrentNewOutputsHaveOneWinner() throws {
        let dir = try Self.setUp()
        defer { try? FileManager.default.removeItem(at: dir) }
        let m = dir.appendingPathComponent("m").path, a = dir.appendingPathComponent("a.wpatch").path
        for round in 0..<4 {
            let out = dir.appendingPathComponent("out\(round)").path
            let results = try runConcurrently([["apply", m, a, "-o", out], ["apply", m, a, "-o", out]])
            #expect(results.filter { $0.status == 0 }.count == 1, "round \(round): \(results.map(\.stderr))")
            #expect(results.contains { $0.stderr.contains("already exists") })
        }
        // A dangling symlink is an existing output: refused without --force, nothing written through it.
        let link = dir.appendingPathComponent("dangling").path
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: dir.appendingPathComponent("nowhere").path)
        let r = try runWilke(["apply", m, a, "-o", link])
        #expect(r.status != 0 && r.stderr.contains("already exists"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("nowhere").path))
        // Paths that can never work fail before anything is written.
        let empty = try runWilke(["apply", m, a, "-o", ""])
        #expect(empty.status != 0 && empty.stderr.contains("empty"), "\(empty.stderr)")
        let single = dir.appendingPathComponent("m/model.safetensors").path
        let isDir = try runWilke(["apply", single, a, "-o", dir.path, "--force"])
        #expect(isDir.status != 0 && isDir.stderr.contains("is a directory"), "\(isDir.stderr)")
        #expect(!(try FileManager.default.contentsOfDirectory(atPath: dir.path)).contains { $0.contains(".tmp-") })
    }

    @Test func inPlaceKeepsModeAndEditsTheSymlinkTarget() throws {
        let dir = try Self.setUp()
        defer { try? FileManager.default.removeItem(at: dir) }
        // The Hugging Face cache layout: snapshots/rev/model.safetensors -> ../../blobs/sha
        let fm = FileManager.default
        let blobs = dir.appendingPathComponent("blobs"), snap = dir.appendingPathComponent("snapshots/rev")
        try fm.createDirectory(at: blobs, withIntermediateDirectories: true)
        try fm.createDirectory(at: snap, withIntermediateDirectories: true)
        let blob = blobs.appendingPathComponent("0123abcd").path
        try fm.copyItem(atPath: dir.appendingPathComponent("m/model.safetensors").path, toPath: blob)
        try fm.copyItem(atPath: dir.appendingPathComponent("m/config.json").path, toPath: snap.appendingPathComponent("config.json").path)
        let link = snap.appendingPathComponent("model.safetensors").path
        try fm.createSymbolicLink(atPath: link, withDestinationPath: "../../blobs/0123abcd")
        chmod(blob, 0o600)
        let before = try fileSHA(blob)

        let a = dir.appendingPathComponent("a.wpatch").path
        for target in [snap.path, link] {  // the directory, and the single-file path through the link
            let r = try runWilke(["apply", target, a, "--in-place"])
            #expect(r.status == 0, "\(r.stderr)")
            #expect(try fm.destinationOfSymbolicLink(atPath: link) == "../../blobs/0123abcd", "the link is still a link")
            #expect(try fileSHA(blob) != before, "the blob itself was edited")
            var st = stat()
            #expect(stat(blob, &st) == 0 && st.st_mode & 0o777 == 0o600, "mode 600 kept")
            #expect(try runWilke(["revert", target, a, "--in-place"]).status == 0)
            #expect(try fileSHA(blob) == before)
        }
        // A hard-linked file is refused in place (the other name would keep the old bytes) unless --force.
        let other = dir.appendingPathComponent("other-name").path
        #expect(Glibc.link(blob, other) == 0)
        let refused = try runWilke(["apply", link, a, "--in-place"])
        #expect(refused.status != 0 && refused.stderr.contains("hard links"), "\(refused.stderr)")
        #expect(try fileSHA(blob) == before)
    }

    @Test func fifosAreRefusedAtOnce() throws {
        let dir = try Self.setUp()
        defer { try? FileManager.default.removeItem(at: dir) }
        let fifo = dir.appendingPathComponent("fifo").path
        #expect(mkfifo(fifo, 0o600) == 0)
        let m = dir.appendingPathComponent("m").path, a = dir.appendingPathComponent("a.wpatch").path
        for args in [["show", fifo], ["inspect", fifo], ["log", fifo], ["ask", fifo, "hi"], ["apply", fifo, a, "-o", fifo + ".out"],
                     ["apply", m, fifo, "-o", fifo + ".out"], ["verify", m, fifo], ["diff", fifo, fifo]] {
            let start = Date()
            // `timeout` turns a hang into exit 124 instead of a test that never ends.
            let r = try runProcess("/usr/bin/timeout", ["10", wilkeBinary().path] + args)
            #expect(r.status != 0 && r.status != 124, "\(args)")
            #expect(r.stderr.contains("FIFO"), "\(args): \(r.stderr)")
            #expect(Date().timeIntervalSince(start) < 5, "\(args) took \(Date().timeIntervalSince(start)) s")
        }
    }

    @Test func controlBytesFromFilesPrintEscaped() throws {
        let dir = try Self.setUp()
        defer { try? FileManager.default.removeItem(at: dir) }
        let clear = "\u{1B}[2J", evilTensor = "evil\u{1B}[2J\u{7}.weight"
        // A safetensors file whose tensor name carries a screen-clearing escape and a bell.
        let st = dir.appendingPathComponent("evil.safetensors").path
        try SafetensorsWriter.write([SafetensorsWriter.Entry(name: evilTensor, dtype: .f32, shape: [4, 4], source: .fill { _ = $0.initializeMemory(as: UInt8.self, repeating: 0) })],
                                    metadata: ["note": "bell\u{7}"], to: st)
        // A patch whose subject clears the screen, on the fixture model.
        let ckpt = try Checkpoint.open(dir.appendingPathComponent("m").path)
        let t = ckpt.tensor(Self.down0)!
        var b = PatchBuilder(architecture: ckpt.patchArchitecture, format: ckpt.patchFormat)
        try b.add(tensor: t.name, layout: t.stepLayout, base: ckpt.tensorBytes(t), u: [Float](repeating: 0.01, count: t.shape[0]),
                  v: [Float](repeating: 0.01, count: t.shape[1]), rank: 1,
                  edits: [EditRecord(requests: [RecordedRequest(prompt: "{} lives in", subject: "Eve\(clear)", targetNew: "Paris\u{202E}")], method: "rome", layer: 0)])
        let patch = b.build()
        let p = dir.appendingPathComponent("evil.wpatch").path
        try Data(try patch.encode()).write(to: URL(fileURLWithPath: p))

        for args in [["show", p], ["inspect", st], ["apply", dir.appendingPathComponent("m").path, p, "-o", dir.appendingPathComponent("out").path]] {
            let r = try runWilke(args)
            #expect(r.status == 0, "\(args): \(r.stderr)")
            let raw = Array((r.stdout + r.stderr).utf8)
            #expect(!raw.contains(0x1B) && !raw.contains(0x07), "\(args) printed raw control bytes")
            #expect(r.stdout.contains("\\x1b[2J"), "\(args): \(r.stdout)")
        }
        // JSON stays exact: the subject comes back byte for byte.
        let json = try runWilke(["show", p, "--json"])
        let obj = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        let request = (((obj?["steps"] as? [[String: Any]])?.first?["edits"] as? [[String: Any]])?.first?["requests"] as? [[String: Any]])?.first
        #expect(request?["subject"] as? String == "Eve\(clear)")
        // An error that echoes a name from the file is escaped too, and stays one line.
        let missing = try runWilke(["verify", st, p])
        #expect(!Array(missing.stdout.utf8).contains(0x1B))
    }

    @Test func verifyExitCodeMatchesApply() throws {
        let dir = try Self.setUp()
        defer { try? FileManager.default.removeItem(at: dir) }
        let m = dir.appendingPathComponent("m").path, a = dir.appendingPathComponent("a.wpatch").path
        // The same tensor, recorded for another architecture: apply refuses it, verify says wrong base (3).
        let ckpt = try Checkpoint.open(m)
        let t = ckpt.tensor(Self.down0)!
        var b = PatchBuilder(architecture: "gpt2", format: ckpt.patchFormat)
        try b.add(tensor: t.name, layout: t.stepLayout, base: ckpt.tensorBytes(t), u: [Float](repeating: 0.01, count: t.shape[0]),
                  v: [Float](repeating: 0.01, count: t.shape[1]), rank: 1)
        let wrong = dir.appendingPathComponent("gpt2.wpatch").path
        try Data(try b.build().encode()).write(to: URL(fileURLWithPath: wrong))
        let refused = try runWilke(["apply", m, wrong, "-o", dir.appendingPathComponent("x").path])
        #expect(refused.status != 0 && refused.stderr.contains("gpt2"), "\(refused.stderr)")
        let v = try runWilke(["verify", m, wrong])
        #expect(v.status == 3, "verify said \(v.status): \(v.stdout)")
        // Clean → 0, applied → 2, and a different base of the same architecture → 1.
        #expect(try runWilke(["verify", m, a]).status == 0)
        #expect(try runWilke(["apply", m, a, "--in-place"]).status == 0)
        #expect(try runWilke(["verify", m, a]).status == 2)
        let again = try runWilke(["apply", m, a, "--in-place"])
        #expect(again.status != 0 && again.stderr.contains("already applied"))
        let b2 = try runWilke(["dev", "gen-patch", m, "--tensor", Self.down0, "--seed", "9", "-o", dir.appendingPathComponent("c.wpatch").path])
        #expect(b2.status == 0)
        #expect(try runWilke(["revert", m, a, "--in-place"]).status == 0)
        #expect(try runWilke(["verify", m, dir.appendingPathComponent("c.wpatch").path]).status == 1, "made on the edited tensor, conflicts with the original")
        #expect(try runWilke(["verify", m, dir.appendingPathComponent("nope.wpatch").path]).status == 64)
    }
}

/// Runs several wilke invocations at the same time and waits for all.
func runConcurrently(_ invocations: [[String]]) throws -> [RunResult] {
    var procs: [(Process, Pipe, Pipe)] = []
    for args in invocations {
        let p = Process()
        p.executableURL = wilkeBinary()
        p.arguments = args
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        procs.append((p, out, err))
    }
    for (p, _, _) in procs { try p.run() }
    return procs.map { p, out, err in
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return RunResult(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }
}

/// The file's SHA-256; the mapping must outlive the hashing of its bytes.
func fileSHA(_ path: String) throws -> String {
    let f = try MappedFile(path: path)
    return withExtendedLifetime(f) { CheckpointRealSHA.hex(f.bytes) }
}
