import Foundation
import Formats
import Patch
import Testing
import TestSupport

/// The patch verbs as a user runs them on the real SmolLM2 GGUF, including every bad input of issue #4:
/// each ends in a one-line error or a complete output, never a partial file or a changed input.
@Suite("patch CLI", .serialized)
struct PatchCLITests {
    static let tensor = "blk.15.ffn_down.weight"

    /// A scratch dir with p.wpatch (rank one on blk.15.ffn_down, ‖Δ‖ ≈ 1% ‖W‖) and p2.wpatch (rank one
    /// on blk.3.ffn_down).
    static func setUp() throws -> URL {
        let dir = try TestPaths.scratch("patch-cli")
        let m = try Checkpoint.open(RealModel.path)
        for (file, name, seed) in [("p.wpatch", tensor, UInt64(1)), ("p2.wpatch", "blk.3.ffn_down.weight", 2)] {
            try Data(try rankOne(m, name: name, seed: seed).encode()).write(to: dir.appendingPathComponent(file))
        }
        return dir
    }

    static func rankOne(_ m: Checkpoint, name: String, seed: UInt64, corruptBase: Bool = false) throws -> Patch {
        let t = m.tensor(name)!
        var base = m.tensorBytes(t)
        if corruptBase { base.bytes[100] ^= 0x10 }
        var state = seed
        func normal() -> Float {
            var s = 0.0
            for _ in 0..<12 { state = state &* 6364136223846793005 &+ 1442695040888963407; s += Double(state >> 11) * 0x1p-53 }
            return Float(s - 6)
        }
        let u = (0..<base.rows).map { _ in normal() * 0.05 }, v = (0..<base.cols).map { _ in normal() * 0.005 }
        var b = PatchBuilder(architecture: "llama", format: "gguf")
        try b.add(tensor: name, layout: t.stepLayout, base: base, u: u, v: v, rank: 1,
                  edits: [EditRecord(requests: [RecordedRequest(prompt: "{} plays", subject: "S\(seed)", targetNew: "T\(seed)")], method: "rome", layer: 15)])
        return b.build()
    }

    func sha(_ path: String) throws -> String {
        let f = try MappedFile(path: path)
        return CheckpointRealSHA.hex(f.bytes)
    }

    /// The visible entries of a directory (temp outputs are hidden dot files).
    func listing(_ dir: URL) throws -> [String] { try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted() }

    @Test(.enabled(if: RealModel.available))
    func showVerifyApplyLogRevert() throws {
        let dir = try Self.setUp()
        defer { try? FileManager.default.removeItem(at: dir) }
        let p = dir.appendingPathComponent("p.wpatch").path, out = dir.appendingPathComponent("out.gguf").path
        let patch = try Patch.decode(Array(try Data(contentsOf: URL(fileURLWithPath: p))))

        let show = try runWilke(["show", p, "--json"])
        #expect(show.status == 0, "\(show.stderr)")
        let shown = try JSONSerialization.jsonObject(with: Data(show.stdout.utf8)) as? [String: Any]
        #expect(shown?["id"] as? String == patch.id)
        #expect((shown?["steps"] as? [[String: Any]])?.first?["tensor"] as? String == Self.tensor)
        let text = try runWilke(["show", p])
        #expect(text.stdout.contains(patch.id) && text.stdout.contains("S1") && text.stdout.contains("Q4_1 → F32"))

        let clean = try runWilke(["verify", RealModel.path, p, "--json"])
        #expect(clean.status == 0)
        #expect((try JSONSerialization.jsonObject(with: Data(clean.stdout.utf8)) as? [String: Any])?["state"] as? String == "applies cleanly")

        let apply = try runWilke(["apply", RealModel.path, p, "-o", out])
        #expect(apply.status == 0, "\(apply.stderr)")
        let log = try runWilke(["log", out, "--json"])
        let logged = (try JSONSerialization.jsonObject(with: Data(log.stdout.utf8)) as? [String: Any])?["patches"] as? [[String: Any]]
        #expect(logged?.map { $0["id"] as? String } == [patch.id])
        #expect(try runWilke(["log", RealModel.path]).stdout.contains("no patches applied"))

        // show and verify agree: the tensors verify lists are the ones show lists, now all applied.
        let applied = try runWilke(["verify", out, p, "--json"])
        #expect(applied.status == 2, "verify exits 2 for an applied patch, as apply refuses it")
        let v = try JSONSerialization.jsonObject(with: Data(applied.stdout.utf8)) as? [String: Any]
        #expect(v?["state"] as? String == "already applied")
        #expect((v?["tensors"] as? [[String: Any]])?.map { $0["name"] as? String } == (shown?["tensors"] as? [[String: Any]])?.map { $0["name"] as? String })

        // ask --patch applies in memory: the same answer as the patched file, not the original's.
        let prompt = "The capital of France is"
        let inMemory = try runWilke(["ask", RealModel.path, prompt, "-n", "0", "--top", "3", "--json", "--patch", p])
        let onDisk = try runWilke(["ask", out, prompt, "-n", "0", "--top", "3", "--json"])
        let plain = try runWilke(["ask", RealModel.path, prompt, "-n", "0", "--top", "3", "--json"])
        #expect(inMemory.status == 0, "\(inMemory.stderr)")
        // In memory the patch is a low-rank term over the Q4_1 view, on disk its F32 result bytes: the
        // same tokens, logits equal up to f32 rounding.
        func next(_ out: String) throws -> [[String: Any]] {
            try #require((try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any])?["next_tokens"] as? [[String: Any]])
        }
        let (m, d) = (try next(inMemory.stdout), try next(onDisk.stdout))
        #expect(m.map { $0["id"] as? Int } == d.map { $0["id"] as? Int })
        #expect(zip(m, d).allSatisfy { abs(($0["logit"] as? Double ?? 0) - ($1["logit"] as? Double ?? 1)) < 1e-4 }, "\(inMemory.stdout)")
        #expect(inMemory.stdout != plain.stdout)

        let twice = try runWilke(["apply", out, p, "-o", dir.appendingPathComponent("twice.gguf").path])
        #expect(twice.status != 0)
        #expect(twice.stderr.contains("already applied"))
        #expect(twice.stderr.split(separator: "\n").count == 1, "\(twice.stderr)")

        let back = dir.appendingPathComponent("back.gguf").path
        let revert = try runWilke(["revert", out, p, "-o", back])
        #expect(revert.status == 0, "\(revert.stderr)")
        #expect(try sha(back) == sha(RealModel.path))
    }

    @Test(.enabled(if: RealModel.available))
    func diffStackAndExtract() throws {
        let dir = try Self.setUp()
        defer { try? FileManager.default.removeItem(at: dir) }
        func path(_ n: String) -> String { dir.appendingPathComponent(n).path }
        #expect(try runWilke(["apply", RealModel.path, path("p.wpatch"), path("p2.wpatch"), "-o", path("seq.gguf")]).status == 0)
        let stack = try runWilke(["stack", path("p.wpatch"), path("p2.wpatch"), "-o", path("s.wpatch")])
        #expect(stack.status == 0, "\(stack.stderr)")
        #expect(try runWilke(["apply", RealModel.path, path("s.wpatch"), "-o", path("stacked.gguf")]).status == 0)
        let a = try Checkpoint.open(path("seq.gguf")), b = try Checkpoint.open(path("stacked.gguf"))
        #expect(a.tensors.map { a.data($0).elementsEqual(b.data(b.tensor($0.name)!)) }.allSatisfy { $0 })

        // diff(m, apply(m, p)) -o q; apply(m, q) has the tensors of apply(m, p).
        #expect(try runWilke(["apply", RealModel.path, path("p.wpatch"), "-o", path("e.gguf")]).status == 0)
        let cmp = try runWilke(["diff", RealModel.path, path("e.gguf"), "--json"])
        let changed = (try JSONSerialization.jsonObject(with: Data(cmp.stdout.utf8)) as? [String: Any])?["changed"] as? [[String: Any]]
        #expect(changed?.count == 1)
        #expect(changed?.first?["rank"] as? Int == 1)
        let extract = try runWilke(["diff", RealModel.path, path("e.gguf"), "-o", path("q.wpatch")])
        #expect(extract.status == 0, "\(extract.stderr)")
        #expect(try runWilke(["apply", RealModel.path, path("q.wpatch"), "-o", path("eq.gguf")]).status == 0)
        let e = try Checkpoint.open(path("e.gguf")), eq = try Checkpoint.open(path("eq.gguf"))
        #expect(e.tensors.allSatisfy { e.data($0).elementsEqual(eq.data(eq.tensor($0.name)!)) })

        let pd = try runWilke(["diff", path("p.wpatch"), path("q.wpatch"), "--json"])
        #expect(pd.status == 0, "\(pd.stderr)")
        let t = ((try JSONSerialization.jsonObject(with: Data(pd.stdout.utf8)) as? [String: Any])?["tensors"] as? [[String: Any]])?.first
        let cosine = t?["cosine"] as? Double ?? 0
        print("diff p q: cosine \(cosine), ‖ΔA−ΔB‖ \(t?["difference_norm"] ?? "-")")
        #expect(cosine > 0.999999)
    }

    @Test(.enabled(if: RealModel.available))
    func badInputsLeaveNoOutput() throws {
        let dir = try Self.setUp()
        defer { try? FileManager.default.removeItem(at: dir) }
        func path(_ n: String) -> String { dir.appendingPathComponent(n).path }
        let good = try Data(contentsOf: URL(fileURLWithPath: path("p.wpatch")))
        try good.prefix(good.count / 2).write(to: URL(fileURLWithPath: path("truncated.wpatch")))
        var flipped = good
        flipped[flipped.count / 2] ^= 0x04
        try flipped.write(to: URL(fileURLWithPath: path("flipped.wpatch")))
        try Data("not a patch at all\n".utf8).write(to: URL(fileURLWithPath: path("foreign.wpatch")))
        let m = try Checkpoint.open(RealModel.path)
        try Data(try Self.rankOne(m, name: Self.tensor, seed: 3, corruptBase: true).encode()).write(to: URL(fileURLWithPath: path("other.wpatch")))
        let before = try sha(RealModel.path)
        for (name, needle) in [("truncated.wpatch", "truncated"), ("flipped.wpatch", "patch"), ("foreign.wpatch", "not a wilke patch"),
                               ("other.wpatch", Self.tensor)] {
            let r = try runWilke(["apply", RealModel.path, path(name), "-o", path("out.gguf")])
            #expect(r.status != 0, "\(name)")
            #expect(r.stderr.contains(needle), "\(name): \(r.stderr)")
            #expect(r.stderr.split(separator: "\n").count == 1, "\(name): \(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: path("out.gguf")))
        }
        let other = try runWilke(["apply", RealModel.path, path("other.wpatch"), "-o", path("out.gguf")])
        #expect(other.stderr.contains("expected"), "names the expected hash: \(other.stderr)")

        // The output exists: refused without --force, replaced with it.
        try Data("keep".utf8).write(to: URL(fileURLWithPath: path("exists.gguf")))
        let refused = try runWilke(["apply", RealModel.path, path("p.wpatch"), "-o", path("exists.gguf")])
        #expect(refused.status != 0 && refused.stderr.contains("already exists"))
        #expect(try String(contentsOfFile: path("exists.gguf"), encoding: .utf8) == "keep")
        #expect(try runWilke(["apply", RealModel.path, path("p.wpatch"), "-o", path("exists.gguf"), "--force"]).status == 0)
        #expect(try Checkpoint.open(path("exists.gguf")).tensor(Self.tensor)?.dtype == .f32)
        // In place on a GGUF whose tensor changes type: refused, input untouched.
        let inPlace = try runWilke(["apply", RealModel.path, path("p.wpatch"), "--in-place"])
        #expect(inPlace.status != 0 && inPlace.stderr.contains("in place"))

        // Disk full: the file-size limit makes write fail with EFBIG; nothing is left, not even a temp file.
        let wilke = wilkeBinary().path
        let full = try runProcess("/bin/bash", ["-c", "ulimit -f 20000; exec \"$0\" apply \"$1\" \"$2\" -o \"$3\"", wilke, RealModel.path,
                                               path("p.wpatch"), path("full.gguf")])
        #expect(full.status != 0)
        #expect(full.stderr.contains("File too large"), "\(full.stderr)")
        #expect(full.stderr.split(separator: "\n").count == 1, "\(full.stderr)")
        let left = try FileManager.default.contentsOfDirectory(atPath: dir.path)
        #expect(!left.contains { $0.contains("full.gguf") }, "\(left)")
        #expect(try sha(RealModel.path) == before)
    }

    @Test(.enabled(if: RealModel.available))
    func killedApplyLeavesNoOutput() throws {
        let dir = try Self.setUp()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("killed.gguf").path
        let p = Process()
        p.executableURL = wilkeBinary()
        p.arguments = ["apply", RealModel.path, dir.appendingPathComponent("p.wpatch").path, "-o", out]
        p.standardError = FileHandle.nullDevice
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        // Kill it as soon as its temp output exists, i.e. in the middle of writing.
        var sawTemp = false
        for _ in 0..<20_000 where p.isRunning {
            if (try listing(dir)).contains(where: { $0.hasPrefix(".killed.gguf.tmp-") }) { sawTemp = true; break }
            usleep(500)
        }
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        #expect(sawTemp, "the apply finished before it could be killed")
        #expect(p.terminationReason == .uncaughtSignal)
        #expect(!FileManager.default.fileExists(atPath: out))
        #expect(try listing(dir).contains { $0.hasPrefix(".killed.gguf.tmp-") }, "the killed run's temp file is there")
        // The next run succeeds and removes the dead process's temp file.
        let again = try runWilke(["apply", RealModel.path, dir.appendingPathComponent("p.wpatch").path, "-o", out])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(!(try listing(dir)).contains { $0.hasPrefix(".killed.gguf.tmp-") })
        #expect(try Checkpoint.open(out).tensor(Self.tensor)?.dtype == .f32)
    }
}

enum CheckpointRealSHA {
    static func hex(_ bytes: UnsafeRawBufferPointer) -> String {
        // Through a one-tensor-free path: the Patch module's SHA-256 of raw bytes.
        TensorBytes(dtype: .u8, rows: 1, cols: bytes.count, bytes: Array(bytes)).sha256
    }
}

func runProcess(_ exe: String, _ args: [String]) throws -> RunResult {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: exe)
    p.arguments = args
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    try p.run()
    let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return RunResult(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
}
