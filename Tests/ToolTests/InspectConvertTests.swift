import Foundation
import Testing
import TestSupport

/// `wilke inspect` and `wilke convert` as a user runs them, on the real model and on broken files.
@Suite struct InspectConvertTests {
    @Test(.enabled(if: RealModel.available))
    func inspectListsTheSameTensorsAsGGUFPy() throws {
        let r = try runWilke(["inspect", RealModel.path, "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let ours = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let refData = try Data(contentsOf: URL(fileURLWithPath: TestPaths.reference("smollm2_tensors.json")))
        let ref = try #require(try JSONSerialization.jsonObject(with: refData) as? [String: Any])
        let ourTensors = try #require(ours["tensors"] as? [[String: Any]])
        let refTensors = try #require(ref["tensors"] as? [[String: Any]])
        #expect(ourTensors.count == 272)
        #expect(ourTensors.count == refTensors.count)
        for (a, b) in zip(ourTensors, refTensors) {
            #expect(a["name"] as? String == b["name"] as? String)
            #expect(a["dtype"] as? String == b["type"] as? String)
            // gguf-py reports `ne` order; our `shape` is row-major, i.e. `ne` reversed.
            #expect((a["shape"] as? [Int])?.reversed() == (b["ne"] as? [Int]))
            #expect(a["offset"] as? Int == b["data_offset"] as? Int)
            #expect(a["bytes"] as? Int == b["n_bytes"] as? Int)
        }
        #expect(ours["architecture"] as? String == "llama")
        #expect(ours["version"] as? Int == 3)
    }

    @Test(.enabled(if: RealModel.available))
    func inspectFiltersByGlob() throws {
        let r = try runWilke(["inspect", RealModel.path, "--tensors", "blk.1[0-5].ffn_down*", "--json"])
        #expect(r.status == 0)
        let obj = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        let names = (obj?["tensors"] as? [[String: Any]])?.compactMap { $0["name"] as? String } ?? []
        #expect(names == (10...15).map { "blk.\($0).ffn_down.weight" })
    }

    /// Truncated, bit-flipped and non-checkpoint inputs: non-zero exit, one line naming the file, no crash.
    @Test(.enabled(if: RealModel.available))
    func badInputsFailWithOneLineNamingTheFile() throws {
        let dir = try TestPaths.scratch("badinput")
        defer { try? FileManager.default.removeItem(at: dir) }
        let original = try Data(contentsOf: URL(fileURLWithPath: RealModel.path), options: .alwaysMapped)
        var cases: [(String, Data)] = []
        for cut in [3, 24, 1000, 1_785_000, 5_000_000] { cases.append(("trunc\(cut).gguf", original.prefix(cut))) }
        var flipped = original.prefix(2_000_000)
        flipped[30] ^= 0xFF  // inside the first key's length
        cases.append(("flip.gguf", flipped + original.dropFirst(2_000_000)))
        cases.append(("notes.txt", Data("just some text, not a model\n".utf8)))
        cases.append(("fake.safetensors", Data([8, 0, 0, 0, 0, 0, 0, 0]) + Data("{\"a\":1}".utf8)))
        for (name, bytes) in cases {
            let path = dir.appendingPathComponent(name).path
            try bytes.write(to: URL(fileURLWithPath: path))
            for verb in [["inspect", path], ["convert", path, "-o", path + ".out"]] {
                let r = try runWilke(verb)
                #expect(r.status != 0, "\(verb) \(name) should fail")
                let lines = r.stderr.split(separator: "\n")
                #expect(lines.count == 1, "\(name): \(r.stderr)")
                #expect(r.stderr.contains(name), "\(name): \(r.stderr)")
                #expect(!FileManager.default.fileExists(atPath: path + ".out"))
            }
        }
        // No temp files left behind either.
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasPrefix(".") }
        #expect(leftovers.isEmpty, "\(leftovers)")
    }

    @Test(.enabled(if: RealModel.available))
    func convertRefusesAnExistingOutput() throws {
        let dir = try TestPaths.scratch("exists")
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("hf").path
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: false)
        let r = try runWilke(["convert", RealModel.path, "-o", out])
        #expect(r.status != 0)
        #expect(r.stderr.contains("already exists"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: out).isEmpty)
    }

    /// GGUF → HF directory → inspect: every GGUF tensor maps to an HF name, tied head left out,
    /// and the values survive (the Q/K un-permutation is checked in FormatsTests).
    @Test(.enabled(if: RealModel.available))
    func convertWritesALoadableDirectory() throws {
        let dir = try TestPaths.scratch("convert")
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("smollm2-hf").path
        let r = try runWilke(["convert", RealModel.path, "-o", out, "--dtype", "bf16"])
        #expect(r.status == 0, "\(r.stderr)")
        for f in ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"] {
            #expect(FileManager.default.fileExists(atPath: out + "/" + f), "\(f)")
        }
        let i = try runWilke(["inspect", out, "--json"])
        #expect(i.status == 0, "\(i.stderr)")
        let obj = try JSONSerialization.jsonObject(with: Data(i.stdout.utf8)) as? [String: Any]
        let tensors = obj?["tensors"] as? [[String: Any]] ?? []
        #expect(tensors.count == 272)
        #expect(tensors.allSatisfy { $0["dtype"] as? String == "BF16" })
        #expect(tensors.contains { $0["name"] as? String == "model.layers.29.mlp.down_proj.weight" && $0["shape"] as? [Int] == [576, 1536] })
        #expect(obj?["format"] as? String == "hf-directory")
    }

    /// A header tool reads any checkpoint: an architecture this build cannot run (here "gemmx", the
    /// fixture's "llama" renamed in place) still inspects, with the reason in place of the
    /// hyper-parameters, while `ask`, which needs them, fails with that reason in one line.
    @Test func anUnknownArchitectureStillInspects() throws {
        let dir = try TestPaths.scratch("unknown-arch")
        defer { try? FileManager.default.removeItem(at: dir) }
        let fixture = try Data(contentsOf: URL(fileURLWithPath: TestPaths.fixture("FormatsTests", "gguf/aligned64.gguf")))
        let name = Data("\u{5}\0\0\0\0\0\0\0llama".utf8), renamed = Data("\u{5}\0\0\0\0\0\0\0gemmx".utf8)
        let at = try #require(fixture.range(of: name))
        var bytes = fixture
        bytes.replaceSubrange(at, with: renamed)
        let path = dir.appendingPathComponent("unknown.gguf").path
        try bytes.write(to: URL(fileURLWithPath: path))

        let text = try runWilke(["inspect", path])
        #expect(text.status == 0, "\(text.stderr)")
        #expect(text.stdout.contains("architecture:  gemmx"))
        #expect(text.stdout.contains("hyper-params:  none: unsupported architecture 'gemmx'"), "\(text.stdout)")
        let json = try runWilke(["inspect", path, "--json"])
        #expect(json.status == 0, "\(json.stderr)")
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        #expect(obj["architecture"] as? String == "gemmx")
        #expect((obj["hyperparameters_error"] as? String)?.hasPrefix("unsupported architecture 'gemmx'") == true)
        #expect((obj["tensors"] as? [Any])?.isEmpty == false)

        let ask = try runWilke(["ask", path, "Hello"])
        #expect(ask.status != 0)
        #expect(ask.stderr.contains("unsupported architecture 'gemmx'"), "\(ask.stderr)")
        #expect(ask.stderr.split(separator: "\n").count == 1, "\(ask.stderr)")
    }
}
