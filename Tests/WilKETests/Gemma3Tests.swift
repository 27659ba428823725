import Foundation
import Testing
import Formats
import TestSupport
@testable import WilKE

/// The real Gemma 3 270M (Q4_K_M GGUF) against transformers loading the same GGUF
/// (Fixtures/gemma3_top5.json, made by samples/reference/make_gemma3_reference.py). The 21st prompt has
/// 828 tokens, so the sliding layers' 512-position window is narrower than the sequence.
@Suite(.serialized) struct Gemma3Tests {
    typealias Reference = Top5Reference

    nonisolated(unsafe) static var shared: LoadedModel?
    static func model() throws -> LoadedModel {
        if let m = shared { return m }
        let m = try LoadedModel(path: Gemma3Model.path)
        shared = m
        return m
    }

    @Test("the GGUF reads as Gemma 3: 4 × 256 query heads over 640, one kv head, every 6th layer global",
          .enabled(if: Gemma3Model.available))
    func config() throws {
        let cfg = try Self.model().config
        #expect(cfg.architecture == .gemma3 && cfg.family == .gemma3)
        #expect((cfg.nLayer, cfg.dModel, cfg.nHead, cfg.nKVHead, cfg.headDim, cfg.dFF) == (18, 640, 4, 1, 256, 2048))
        #expect(cfg.slidingWindow == 512 && cfg.ropeTheta == 1e6 && cfg.ropeLocalTheta == 10000)
        #expect(cfg.queryPreAttnScalar == 256 && cfg.tiedHead)
        #expect((0..<18).filter { !cfg.isSlidingLayer($0) } == [5, 11, 17])
        // config.json round trip (model_type gemma3_text, the Gemma keys written back).
        let back = try ModelConfig(configJSON: JSONEncoder().encode(cfg), path: "config.json")
        #expect(back == cfg)
    }

    @Test("greedy token and top-5 logits equal transformers' on 21 prompts", .enabled(if: Gemma3Model.available))
    func greedyTokenAndTop5LogitsMatchTransformers() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: TestPaths.fixture("WilKETests", "gemma3_top5.json")))
        let ref = try JSONDecoder().decode(Reference.self, from: data)
        let m = try Self.model()
        #expect(ref.prompts.count == 21)
        let worst = try ref.expectMatches(m)
        print("Gemma 3 top-5 logits vs transformers: max abs diff \(worst)")
    }

    @Test("past the window, continuing from a KV cache gives the logits of the full pass", .enabled(if: Gemma3Model.available))
    func cachedContinuationPastTheWindow() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: TestPaths.fixture("WilKETests", "gemma3_top5.json")))
        let ids = try #require(try JSONDecoder().decode(Reference.self, from: data).prompts.last?.ids)
        #expect(ids.count > 600)
        let m = try Self.model().model
        let full = try m.forward(ForwardBatch(sequences: [ids], logitsAt: [TokenPosition(row: 0, pos: ids.count - 1)]))
        var head = ForwardBatch(sequences: [Array(ids[..<600])])
        head.returnKV = true
        let cache = try m.forward(head).kv[0]
        var tail = ForwardBatch(sequences: [Array(ids[600...])], logitsAt: [TokenPosition(row: 0, pos: ids.count - 1)])
        tail.prefixes = [cache]
        let cached = try m.forward(tail)
        #expect(maxAbsDiff(cached.logits[0], full.logits[0]) < 1e-3)
    }

    @Test("converted to a Hugging Face directory (norms back to w) and read back, it computes the same logits",
          .enabled(if: Gemma3Model.available))
    func huggingFaceRoundTrip() throws {
        let dir = try TestPaths.scratch("gemma3-hf")
        defer { try? FileManager.default.removeItem(at: dir) }
        let hf = dir.appendingPathComponent("hf").path
        try Converter.ggufToHuggingFace(try Checkpoint.open(Gemma3Model.path), output: hf, dtype: .f32, overwrite: false)
        let ckpt = try Checkpoint.open(hf)
        #expect(ckpt.config?.architecture == .gemma3)
        // Stored as HF's w: the GGUF's attn_norm starts at 16.0, so HF's at 15.0.
        let stored = try ckpt.logical(#require(ckpt.tensor("blk.0.attn_norm.weight")))
        #expect(stored[0] == 15)
        let model = try TransformerModel(config: ckpt.requiredConfig(), weights: CheckpointWeights(ckpt))
        let ids = [[2, 818, 5279, 529, 7001, 563], [2, 9259, 1902]]
        let at = ids.enumerated().map { TokenPosition(row: $0, pos: $1.count - 1) }
        let ours = try model.forward(ForwardBatch(sequences: ids, logitsAt: at)).logits
        let gguf = try Self.model().model.forward(ForwardBatch(sequences: ids, logitsAt: at)).logits
        var worst: Float = 0
        for (a, b) in zip(ours, gguf) { for (x, y) in zip(a, b) { worst = max(worst, abs(x - y)) } }
        print("Gemma 3 HF round trip: max logit diff \(worst)")
        #expect(worst < 1e-3)
    }
}

/// Gemma 3's pieces that need no model file: the sliding-window attention and the config.json keys.
@Suite struct Gemma3RulesTests {
    /// With a window of w, query i sees keys i - w + 1 ... i only: the same as attention over just those keys.
    @Test(arguments: [1, 3]) func slidingWindowAttendsToTheLastKeysOnly(window: Int) {
        let (n, h, g, d) = (7, 2, 1, 4)
        let q = noise(n * h * d, seed: 11), k = noise(n * g * d, seed: 12), v = noise(n * g * d, seed: 13)
        let qb = FloatBuffer(q), kb = FloatBuffer(k), vb = FloatBuffer(v), out = FloatBuffer(count: n * h * d)
        Attention.forward(out: out.p, q: qb.p, rows: [AttentionRow(offset: 0, n: n, past: 0, k: kb.p, v: vb.p, att: nil)],
                          nHead: h, nKVHead: g, headDim: d, window: window)
        for i in 0..<n {
            let lo = max(0, i - window + 1), m = i - lo + 1
            // The window as its own sequence; its last query is query i.
            let wq = Array(q[(lo * h * d)..<((i + 1) * h * d)])
            let wk = Array(k[(lo * g * d)..<((i + 1) * g * d)]), wv = Array(v[(lo * g * d)..<((i + 1) * g * d)])
            var ref = [Float](repeating: 0, count: m * h * d)
            Attention.forwardNaive(out: &ref, q: wq, k: wk, v: wv, n: m, nHead: h, nKVHead: g, headDim: d)
            let got = Array(out.array[(i * h * d)..<((i + 1) * h * d)])
            #expect(maxAbsDiff(got, Array(ref[((m - 1) * h * d)...])) < 1e-5, "query \(i)")
        }
    }

    @Test func configJSONReadsGemmaKeysAndRefusesASoftcap() throws {
        let base = """
        "model_type": "gemma3_text", "num_hidden_layers": 6, "hidden_size": 64, "num_attention_heads": 4,
        "num_key_value_heads": 1, "head_dim": 32, "intermediate_size": 128, "vocab_size": 100,
        "max_position_embeddings": 256, "sliding_window": 16, "hidden_activation": "gelu_pytorch_tanh",
        "rope_parameters": {"full_attention": {"rope_type": "default", "rope_theta": 1000000.0},
                            "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0}}
        """
        let cfg = try ModelConfig(configJSON: Data("{\(base)}".utf8), path: "config.json")
        #expect(cfg.architecture == .gemma3 && cfg.headDim == 32 && cfg.nHead * cfg.headDim != cfg.dModel)
        #expect(cfg.ropeTheta == 1e6 && cfg.ropeLocalTheta == 1e4 && cfg.queryPreAttnScalar == 256)
        #expect(cfg.slidingWindowPattern == 6 && (0..<6).map(cfg.isSlidingLayer) == [true, true, true, true, true, false])
        #expect(cfg.maxPositions == 256)
        try cfg.checkEngineSupport()
        #expect(throws: FormatError.invalidHyperparameter("final_logit_softcapping", expected: "null")) {
            try ModelConfig(configJSON: Data("{\(base), \"final_logit_softcapping\": 30.0}".utf8), path: "config.json")
        }
        #expect(try ModelConfig(configJSON: Data("{\(base), \"final_logit_softcapping\": null}".utf8), path: "c") == cfg)
    }
}
