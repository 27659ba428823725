import Foundation
import Formats
@testable import Patch
import Testing
import TestSupport
@testable import WilKE

/// ROME and WilKE on the real Gemma 3 270M (Q4_K_M GGUF): the δ gradient against finite differences,
/// ten facts it knows (samples/gemma3_facts.jsonl) each edited alone, twenty unrelated prompts
/// (samples/gemma3_unrelated.txt) kept, and a patch of Q4_K and Q6_K down-projections applied and
/// reverted to the file's SHA-256. `make accept` runs the same facts with llama.cpp reading the patched file.
@Suite(.serialized) struct Gemma3EditTests {
    /// Its own copy of the model: the edits change weights, which Gemma3Tests' comparisons (run in
    /// parallel with this suite) must not see. Every test restores the unedited weights before returning.
    nonisolated(unsafe) static var shared: LoadedModel?
    static func model() throws -> LoadedModel {
        if let m = shared { return m }
        let m = try LoadedModel(path: Gemma3Model.path)
        shared = m
        return m
    }

    static func sample(_ name: String) -> String { TestPaths.root.appendingPathComponent("samples/\(name)").path }
    static var facts: [EditRequest] { get throws { try RequestFile.load(path: sample("gemma3_facts.jsonl")).requests } }
    static var unrelated: [String] {
        get throws {
            try String(contentsOfFile: sample("gemma3_unrelated.txt"), encoding: .utf8).split(separator: "\n")
                .map(String.init).filter { !$0.isEmpty && !$0.hasPrefix("#") }
        }
    }

    /// The defaults (ROME at layer 3 of 18, WilKE's fast scan of 0-8, Gemma's clamp of 1) with fewer,
    /// shorter context templates and a scan that optimizes one layer, to keep `make test` short.
    static func hyperparameters(_ m: LoadedModel) -> EditHyperparameters {
        var hp = EditHyperparameters.defaults(layers: m.config.nLayer, family: m.config.family)
        hp.templateLengths = [[5, 4]]
        hp.scanTop = 1  // WilKE optimizes only the layer its estimate ranks best
        return hp
    }

    /// Greedy next token of every prompt, in one batch.
    static func greedy(_ m: LoadedModel, _ prompts: [String]) throws -> [Int] {
        let ids = try prompts.map { try m.encodePrompt($0) }
        let out = try m.model.forward(ForwardBatch(sequences: ids, logitsAt: ids.enumerated().map { TokenPosition(row: $0, pos: $1.count - 1) }))
        return out.logits.map { row in row.indices.max { row[$0] < row[$1] }! }
    }

    @Test("ROME's dLoss/dδ on the MLP output of layer 3 equals finite differences along 3 directions",
          .enabled(if: Gemma3Model.available))
    func deltaGradientMatchesFiniteDifferences() throws {
        let m = try Self.model()
        let fact = try #require(try Self.facts.first)
        let inputs = try RomeInputs(request: fact, templates: ["{}", "Here is a fact. {}"], tokenizer: m.tokenizer)
        let p = RomeProblem(model: m.model, rows: inputs.rows, subjects: inputs.subjectIndex, targets: inputs.target,
                            klFactor: 0.0625, weightDecay: 0.5)
        let layer = 3
        let ref = try p.reference(layer: layer), base = try p.baseEntering(layer: layer)
        let c = m.config.dModel
        let random = noise(c, seed: 3)
        let delta = random.map { $0 * 0.5 * ref.m0Norm / sqrtf(random.reduce(0) { $0 + $1 * $1 }) }
        let g = try p.gradient(p.fastMLPBatch(delta, layer: layer, base: base), delta, ref, layer: layer, site: .mlpOutput)
        let gNorm = sqrtf(g.reduce(0) { $0 + $1 * $1 })
        func unit(_ v: [Float]) -> [Float] { let n = sqrtf(v.reduce(0) { $0 + $1 * $1 }); return v.map { $0 / n } }
        for (name, u) in [("gradient", unit(g)), ("random 1", unit(noise(c, seed: 4))), ("random 2", unit(noise(c, seed: 5)))] {
            func loss(_ s: Float) throws -> Double {
                let d = zip(delta, u).map { $0 + s * $1 }
                return Double(try p.loss(p.fastMLPBatch(d, layer: layer, base: base), d, ref).total)
            }
            let h = 0.02 * ref.m0Norm
            let central = { (h: Float) throws -> Double in (try loss(h) - loss(-h)) / Double(2 * h) }
            let numeric = (4 * (try central(h / 2)) - (try central(h))) / 3
            let analytic = zip(g, u).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
            let err = abs(analytic - numeric) / Double(gNorm)
            print("Gemma 3 layer \(layer) dLoss/dδ along \(name): analytic \(analytic), finite differences \(numeric), error / ‖g‖ \(err)")
            #expect(err < 2e-3, "\(name): \(err)")
        }
    }
}

extension Gemma3EditTests {
    /// C per layer from 4,096 tokens the model samples itself (a fifth of the tool's default 10·F, to keep
    /// the first run short), cached in $WILKE_CACHE/stats like `wilke stats`.
    static func statistics(_ m: LoadedModel, layers: [Int]) throws -> KeyStatisticsSource {
        var options = StatsOptions(layers: layers)
        options.tokens = 4096
        let stats = try KeyStatistics.compute(model: m.model, tokenizer: m.tokenizer,
                                              fingerprint: ModelFingerprint(checkpoint: m.checkpoint, nLayer: m.config.nLayer),
                                              options: options, cache: StatsCache())
        let found = Dictionary(uniqueKeysWithValues: stats.map { ($0.covariance.layer, $0.covariance) })
        return KeyStatisticsSource(solve: { found[$0]?.solver })
    }

    /// Each fact edited alone on the unedited model (restored after each): the new target becomes the
    /// greedy answer or at least likelier than the true one, and the 20 unrelated prompts keep their
    /// greedy next token (`keptPerEdit`).
    @Test("ROME and WilKE edits take effect on 10 facts and keep their unrelated answers",
          .enabled(if: Gemma3Model.available), arguments: [EditMethod.rome, .wilke])
    func editsTakeEffectAndKeepUnrelatedAnswers(method: EditMethod) throws {
        let m = try Self.model()
        let hp = Self.hyperparameters(m)
        let algorithm = try EditAlgorithm(method: method, hyperparameters: hp)
        let stats = try Self.statistics(m, layers: hp.scanLayers)  // ROME's layer 3 among them: one pass
        let (facts, prompts) = (try Self.facts, try Self.unrelated)
        #expect(facts.count == 10 && prompts.count == 20)
        let before = try Self.greedy(m, prompts)
        let original = m.model.mlpOutputSnapshot()
        defer { try? m.model.restore(original) }
        var templates: [String]?
        var (effective, greedy, kept) = (0, 0, 0)
        for fact in facts {
            let editor = Editor(m, hyperparameters: hp, statistics: stats)
            if let templates { editor.adoptTemplates(templates) } else { templates = try editor.contextTemplates() }
            let report = try editor.edit(fact, algorithm: algorithm)
            let target = m.tokenizer.encode(" " + fact.targetNew, addSpecial: false)
            let top = try editor.greedyMatches(try m.encodePrompt(fact.filledPrompt), target)
            let same = zip(before, try Self.greedy(m, prompts)).filter { $0 == $1 }.count
            let ok = top || report.newAfter > (report.oldAfter ?? 1)
            print(String(format: "Gemma 3 %@ layer %d: %@ -> %@: p(new) %.4f -> %.4f, p(true) %.4f -> %.4f, greedy %@, unrelated kept %d/20, %d steps, %.1f s",
                         method.rawValue, report.layer, fact.filledPrompt, fact.targetNew, report.newBefore, report.newAfter,
                         report.oldBefore ?? -1, report.oldAfter ?? -1, top ? "yes" : "no", same, report.adamSteps, report.seconds)
                  + " LA \(report.relativeSizes[report.layer] ?? -1)")
            #expect(ok, "\(fact.filledPrompt) -> \(fact.targetNew)")
            #expect(same >= Self.keptPerEdit(method), "\(fact.filledPrompt): \(same)/20 unrelated kept")
            effective += ok ? 1 : 0; greedy += top ? 1 : 0; kept += same
            try m.model.restore(original)
        }
        print("Gemma 3 \(method.rawValue): \(effective)/10 effective, \(greedy)/10 greedy, unrelated kept \(kept)/200")
        #expect(effective == 10)
        #expect(kept >= 190)  // the issue's 90%
    }

    /// Unrelated answers each edit must keep: ≥ 18 of 20. ROME at layer 3 measured 18-20 (195/200); WilKE's
    /// one-layer fast scan, which spreads the ten facts over layers 1-8, 18-20 (194/200). Before the
    /// estimate's clamp bound it chose layer 0 for all ten and kept 15-20 each (178/200;
    /// docs/ALGORITHM_NOTES.md, "The clamp bound").
    static func keptPerEdit(_ method: EditMethod) -> Int { 18 }

    /// A ROME edit at layer 3 (ffn_down Q4_K) and one at layer 4 (Q6_K), plus a rank-one step on a Q5_0
    /// matrix (Gemma's down-projections are never Q5_0, its gate/up/q/k are), applied to a copy of the GGUF
    /// and reverted: the reverted file has the original's SHA-256.
    @Test("apply then revert of Gemma edits on Q4_K, Q6_K and Q5_0 tensors restores the file byte for byte",
          .enabled(if: Gemma3Model.available))
    func applyRevertRestoresTheFile() throws {
        let m = try Self.model()
        var hp = Self.hyperparameters(m)
        hp.useCovariance = false  // the patch mechanics do not depend on C
        hp.steps = 8
        let original = m.model.mlpOutputSnapshot()
        defer { try? m.model.restore(original) }
        let editor = Editor(m, hyperparameters: hp) { _ in nil }
        let fact = try #require(try Self.facts.first)
        for layer in [3, 4] { _ = try editor.edit(fact, method: .rome, layer: layer, allowKnownTarget: true) }
        let edit = editor.patch()
        let ckpt = m.checkpoint
        let types = edit.steps.map { ckpt.tensor($0.tensor)!.dtype }
        #expect(types == [.q4_K, .q6_K])
        let gate = try #require(ckpt.tensor("blk.0.ffn_gate.weight"))
        #expect(gate.dtype == .q5_0)
        let base = ckpt.tensorBytes(gate)
        var b = PatchBuilder(architecture: ckpt.patchArchitecture, format: ckpt.patchFormat, metadata: ["tool": "test"])
        try b.add(tensor: gate.name, layout: gate.stepLayout, base: base, u: noise(base.rows, seed: 1).map { $0 * 0.05 },
                  v: noise(base.cols, seed: 2).map { $0 * 0.05 }, rank: 1,
                  edits: [EditRecord(requests: [RecordedRequest(prompt: fact.prompt, subject: fact.subject, targetNew: fact.targetNew,
                                                                targetTrue: fact.targetTrue)], method: "rome", layer: 0)])
        let q5 = b.build()

        let dir = try TestPaths.scratch("gemma3-patch")
        defer { try? FileManager.default.removeItem(at: dir) }
        let edited = dir.appendingPathComponent("edited.gguf").path, reverted = dir.appendingPathComponent("reverted.gguf").path
        let report = try CheckpointPatching.apply([edit, q5], to: ckpt, output: edited)
        #expect(Set(report.typeChanges) == ["blk.3.ffn_down.weight", "blk.4.ffn_down.weight", "blk.0.ffn_gate.weight"])
        let e = try Checkpoint.open(edited)
        #expect(try Provenance.read(e).map(\.id) == [edit.id, q5.id])
        try CheckpointPatching.revert([edit, q5], from: e, output: reverted)
        let (a, z) = (try Self.sha256(Gemma3Model.path), try Self.sha256(reverted))
        print("Gemma 3 apply + revert: original \(a.prefix(16)), reverted \(z.prefix(16))")
        #expect(a == z)
    }

    /// SHA-256 of a whole file, hex.
    static func sha256(_ path: String) throws -> String {
        let f = try MappedFile(path: path)
        return withExtendedLifetime(f) { Hash.sha256Hex(f.bytes) }  // bytes is unmapped with f
    }
}
