import Foundation
import Formats
import Patch
import Testing
import TestSupport
@testable import WilKE

/// The llama-family architectures through the real checkpoint layer, in both forms: the fixture's HF
/// model.safetensors (next to its config.json) and its GGUF form written as llama.cpp's converter writes
/// it (samples/reference/make_family_gguf_fixtures.py: permuted Q/K for llama, Phi-3's fused tensors,
/// Llama 3's rope_freqs, Qwen3's per-head norms). For each: the logits equal transformers', and a ROME
/// edit made by the engine on that file applies to a new file whose model computes the edited logits,
/// and reverts to the original bytes.
@Suite struct FamilyCheckpointTests {
    static let families = ["qwen2", "qwen3", "mistral", "phi3", "llama3"]
    static let forms = ["safetensors", "gguf"]

    static func path(_ arch: String, _ form: String) -> String {
        form == "gguf" ? TestPaths.fixture("WilKETests", "models/\(arch).gguf")
            : TestPaths.fixture("WilKETests", "models/\(arch)/model.safetensors")
    }

    static func model(_ ckpt: Checkpoint) throws -> TransformerModel {
        try TransformerModel(config: try ckpt.requiredConfig(), weights: CheckpointWeights(ckpt))
    }

    /// The positions whose logits the file must reproduce: every one, except that a Mistral GGUF is a
    /// llama GGUF without the window (llama.cpp's converter drops it), so it matches only before it.
    static func comparable(_ arch: String, _ form: String, _ cfg: ModelConfig) -> Int {
        arch == "mistral" && form == "gguf" ? 5 : .max
    }

    @Test(arguments: families, forms) func logitsMatchTransformers(arch: String, form: String) throws {
        let fx = try FixtureModel(arch)
        let ckpt = try Checkpoint.open(Self.path(arch, form))
        let cfg = try ckpt.requiredConfig()
        #expect(cfg.architecture == (arch == "mistral" && form == "gguf" || arch == "llama3" ? .llama : Architecture(name: arch)))
        let m = try Self.model(ckpt)
        let limit = Self.comparable(arch, form, cfg)
        var worst: Float = 0
        for (r, row) in try fx.rows.enumerated() {
            let n = min(row.count, limit)
            let logits = try m.forward(.allLogits([Array(row.prefix(n))])).logits
            let ref = Array(try fx.values("logits.row\(r)").prefix(n * cfg.vocabSize))
            worst = max(worst, maxAbsDiff(Array(logits.joined()), ref))
        }
        print("\(arch) \(form) logits vs transformers: max abs diff \(worst)")
        #expect(worst <= 1e-4)
    }

    /// Llama 3's two carriers of the same scaling agree: the divisors computed from config.json's bands
    /// and the GGUF's rope_freqs.weight (computed by the converter's formula in Python, in f64).
    @Test func llama3FrequenciesAgreeAcrossForms() throws {
        let hf = try Checkpoint.open(Self.path("llama3", "safetensors")), gguf = try Checkpoint.open(Self.path("llama3", "gguf"))
        let scaling = try #require(try hf.requiredConfig().ropeScaling)
        #expect(scaling == Llama3RopeScaling(factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalContextLength: 64))
        let fromConfig = try #require(try Self.model(hf).weights.ropeDivisors)
        let fromTensor = try #require(try Self.model(gguf).weights.ropeDivisors)
        print("llama3 divisors \(fromConfig) vs rope_freqs \(fromTensor)")
        #expect(maxAbsDiff(fromConfig, fromTensor) <= 1e-6)
        // The three bands are all present: kept (1), divided by the factor (8), and interpolated between.
        #expect(fromConfig.first == 1 && fromConfig.last == 8 && fromConfig.contains { $0 > 1 && $0 < 8 })
    }

    @Test(arguments: families, forms) func romeEditAppliesAndRevertsByteExactly(arch: String, form: String) throws {
        let dir = try TestPaths.scratch("family-edit-\(arch)-\(form)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let fixtureDir = TestPaths.fixture("WilKETests", "models/\(arch)")
        let ext = form == "gguf" ? "gguf" : "safetensors"
        // The outputs sit next to a copy of config.json so that the edited safetensors file loads.
        if form == "safetensors" {
            try FileManager.default.copyItem(atPath: fixtureDir + "/config.json", toPath: dir.appendingPathComponent("config.json").path)
        }
        let base = Self.path(arch, form)
        let ckpt = try Checkpoint.open(base)
        let model = try Self.model(ckpt)
        let f = try RomeEditFixtureTests.Fixture(arch, layers: model.config.nLayer)
        let up = try model.rankOneUpdate(f.inputs, layer: f.layer, f.hp, covariance: try f.solver(f.layer))

        // The patch step Editor.apply records: W += r ûᵀ on the stored ffn_down, promoted to F32.
        let t = try #require(ckpt.tensor("blk.\(f.layer).ffn_down.weight"))
        var builder = PatchBuilder(architecture: ckpt.patchArchitecture, format: ckpt.patchFormat)
        let record = EditRecord(requests: [RecordedRequest(prompt: "{} is", subject: "s", targetNew: "t")], method: "rome", layer: f.layer)
        _ = try builder.add(tensor: t.name, layout: t.stepLayout, base: ckpt.tensorBytes(t), u: up.r, v: up.u, rank: 1, scale: 1,
                            promoteTo: .f32, edits: [record])
        let patch = builder.build()

        let edited = dir.appendingPathComponent("edited.\(ext)").path, reverted = dir.appendingPathComponent("reverted.\(ext)").path
        try CheckpointPatching.apply([patch], to: ckpt, output: edited)
        let applied = try Checkpoint.open(edited)

        // The applied file computes what the engine computed with the edit in memory.
        try model.addMLPOutputTerm(layer: f.layer, left: up.r, right: up.u, rank: 1)
        let prompt = [f.inputs.rows[0]]
        let inMemory = try model.forward(.allLogits(prompt)).logits, fromFile = try Self.model(applied).forward(.allLogits(prompt)).logits
        let d = maxAbsDiff(Array(inMemory.joined()), Array(fromFile.joined()))
        print("\(arch) \(form) edited file vs in-memory edit: max abs diff \(d)")
        #expect(d <= 1e-4)

        try CheckpointPatching.revert([patch], from: applied, output: reverted)
        let same = try Data(contentsOf: URL(fileURLWithPath: reverted)) == Data(contentsOf: URL(fileURLWithPath: base))
        #expect(same, "\(arch) \(form): revert gives back the original bytes")
    }

    /// `wilke convert`'s GGUF → Hugging Face path on each GGUF form: every tensor comes back under its HF
    /// name with the original bytes (Q/K un-permuted, Phi-3's fused tensors and Qwen3's norms renamed),
    /// and the written config.json runs the same model. Llama 3 is the exception: its GGUF carries the
    /// scaling only as rope_freqs.weight, which has no HF counterpart, so the converted config is plain
    /// llama (checked here as what it is).
    @Test(arguments: families) func convertedGGUFGivesBackTheHFTensors(arch: String) throws {
        let dir = try TestPaths.scratch("family-convert-\(arch)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("hf").path
        try Converter.ggufToHuggingFace(try Checkpoint.open(Self.path(arch, "gguf")), output: out, dtype: .f32, overwrite: false)
        let converted = try Checkpoint.open(out), original = try Checkpoint.open(Self.path(arch, "safetensors"))
        #expect(Set(converted.tensors.map(\.name)) == Set(original.tensors.map(\.name)))
        for t in original.tensors {
            let c = try #require(converted.tensor(t.name), "\(arch) \(t.name)")
            #expect(c.shape == t.shape && Array(converted.data(c)) == Array(original.data(t)), "\(arch) \(t.name)")
        }
        let cfg = try converted.requiredConfig()
        guard arch != "llama3" else {
            #expect(cfg.ropeType == "default" && cfg.ropeScaling == nil)
            return
        }
        let fx = try FixtureModel(arch)
        let m = try Self.model(converted)
        let row = Array(try fx.rows[0].prefix(Self.comparable(arch, "gguf", cfg)))
        let logits = try m.forward(.allLogits([row])).logits
        #expect(maxAbsDiff(Array(logits.joined()), Array(try fx.values("logits.row0").prefix(row.count * cfg.vocabSize))) <= 1e-4)
    }
}
