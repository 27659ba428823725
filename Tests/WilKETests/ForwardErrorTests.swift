import Foundation
import Formats
import Testing
import TestSupport
@testable import WilKE

/// A source with one tensor removed or replaced.
struct EditedSource: WeightSource {
    let base: WeightSource
    var drop: String? = nil
    var replace: (String, [Int], [Float])? = nil
    func has(_ name: String) -> Bool { name != drop && base.has(name) }
    func tensor(_ name: String) throws -> (shape: [Int], values: [Float]) {
        if let r = replace, r.0 == name { return (r.1, r.2) }
        if name == drop { throw WilKEError.missingTensor(name) }
        return try base.tensor(name)
    }
}

@Suite struct ForwardErrorTests {
    func source(_ arch: String) throws -> (ModelConfig, WeightSource) {
        let dir = TestPaths.fixture("WilKETests", "models/\(arch)")
        let cfg = try ModelConfig(configJSON: Data(contentsOf: URL(fileURLWithPath: dir + "/config.json")), path: "config.json")
        return (cfg, try HFSafetensorsSource(dir: dir, arch: arch))
    }

    @Test func missingTensorIsNamed() throws {
        let (cfg, src) = try source("llama")
        let err = #expect(throws: WilKEError.self) {
            try TransformerModel(config: cfg, weights: EditedSource(base: src, drop: "blk.1.ffn_gate.weight"))
        }
        #expect(err == .missingTensor("blk.1.ffn_gate.weight"))
        #expect(err?.description == "tensor blk.1.ffn_gate.weight is missing from the checkpoint")
        // An untied head needs output.weight.
        #expect(throws: WilKEError.missingTensor("output.weight")) {
            try TransformerModel(config: cfg, weights: EditedSource(base: src, drop: "output.weight"))
        }
    }

    @Test func misshapedTensorIsNamed() throws {
        let (cfg, src) = try source("gpt2")
        let bad = EditedSource(base: src, replace: ("blk.0.attn_qkv.weight", [32, 96], [Float](repeating: 0, count: 32 * 96)))
        #expect(throws: WilKEError.tensorShape(name: "blk.0.attn_qkv.weight", expected: [96, 32], found: [32, 96])) {
            try TransformerModel(config: cfg, weights: bad)
        }
        let short = EditedSource(base: src, replace: ("output_norm.bias", [32], [1, 2]))
        #expect(throws: WilKEError.tensorSize(name: "output_norm.bias", expected: 32, found: 2)) {
            try TransformerModel(config: cfg, weights: short)
        }
    }

    @Test func badInputsAreRejected() throws {
        let fx = try FixtureModel("gpt2")
        #expect(throws: WilKEError.tokenOutOfRange(token: 96, vocabSize: 96)) {
            try fx.model.forward(.allLogits([[1, 96]]))
        }
        #expect(throws: WilKEError.sequenceTooLong(length: 33, maxPositions: 32)) {
            try fx.model.forward(.allLogits([Array(repeating: 1, count: 33)]))
        }
        #expect(throws: WilKEError.invalidPosition(row: 0, pos: 2)) {
            try fx.model.forward(ForwardBatch(sequences: [[1, 2]], logitsAt: [TokenPosition(row: 0, pos: 2)]))
        }
        var b = ForwardBatch(sequences: [[1, 2]])
        b.mlpDelta = Intervention(layer: 0, vector: [1], at: [])
        #expect(throws: WilKEError.vectorSize(expected: 32, found: 1)) { try fx.model.forward(b) }
        b.mlpDelta = Intervention(layer: 2, vector: Array(repeating: 0, count: 32), at: [])
        #expect(throws: WilKEError.invalidLayer(2)) { try fx.model.forward(b) }
    }

    func config(_ json: String) throws -> ModelConfig { try ModelConfig(configJSON: Data(json.utf8), path: "config.json") }

    @Test func unsupportedConfigsAreRejected() throws {
        #expect(throws: FormatError.unsupportedArchitecture("bert", supported: Architecture.names)) {
            try config(#"{"model_type": "bert"}"#)
        }
        #expect(throws: FormatError.missingHyperparameter("n_layer")) {
            try config(#"{"model_type": "gpt2", "n_embd": 8, "n_head": 2, "vocab_size": 4, "n_positions": 8}"#)
        }
        #expect(throws: FormatError.invalidHyperparameter("n_layer", expected: "an integer")) {
            try config(#"{"model_type": "gpt2", "n_layer": "2", "n_embd": 8, "n_head": 2, "vocab_size": 4, "n_positions": 8}"#)
        }
        #expect(throws: FormatError.invalidConfigJSON(path: "config.json")) { try config("[1, 2]") }
        // Read, so header tools and patches work on such a model; refused where the engine would compute
        // another model.
        let llama = #"{"model_type":"llama","hidden_size":8,"num_attention_heads":2,"num_hidden_layers":1,"intermediate_size":8,"vocab_size":4,"max_position_embeddings":16"#
        let llama3 = try config(llama + #","rope_scaling":{"rope_type":"llama3","factor":8}}"#)
        #expect(throws: FormatError.unsupportedRopeType("llama3")) { try llama3.checkEngineSupport() }
        #expect(throws: FormatError.unsupportedRopeType("llama3")) {
            try TransformerModel(config: llama3, weights: EditedSource(base: try source("llama").1))
        }
        #expect(throws: FormatError.unsupportedRopeType("yarn")) {
            try config(llama + #","rope_parameters":{"rope_type":"yarn","rope_theta":1e6}}"#).checkEngineSupport()
        }
        #expect(throws: FormatError.unsupportedActivation("gelu", supported: "silu")) {
            try config(llama + #","hidden_act":"gelu"}"#).checkEngineSupport()
        }
        #expect(throws: FormatError.unsupportedMLPBias) { try config(llama + #","mlp_bias":true}"#).checkEngineSupport() }
        let gpt2 = #"{"model_type":"gpt2","n_layer":1,"n_embd":8,"n_head":2,"vocab_size":4,"n_positions":8,"activation_function":"relu"}"#
        #expect(throws: FormatError.unsupportedActivation("relu", supported: "gelu_new")) { try config(gpt2).checkEngineSupport() }
        try config(llama + "}").checkEngineSupport()
    }

    /// Every validation rule is its own error, from either reader.
    @Test func invalidShapesAreNamed() throws {
        let llama = #"{"model_type":"llama","num_hidden_layers":1,"intermediate_size":8,"vocab_size":4,"max_position_embeddings":16"#
        #expect(throws: FormatError.kvHeadsDoNotDivide(heads: 4, kvHeads: 3)) {
            try config(llama + #","hidden_size":8,"num_attention_heads":4,"num_key_value_heads":3}"#)
        }
        #expect(throws: FormatError.headsDoNotTile(heads: 3, headDim: 2, dModel: 8)) {
            try config(llama + #","hidden_size":8,"num_attention_heads":3}"#)
        }
        #expect(throws: FormatError.nonPositiveHyperparameter("sliding_window", value: 0)) {
            try config(llama + #","hidden_size":8,"num_attention_heads":2,"sliding_window":0}"#)
        }
        #expect(throws: FormatError.invalidRotaryDim(3, headDim: 4)) {
            try config(#"{"model_type":"gptj","n_layer":1,"n_embd":8,"n_head":2,"vocab_size":4,"n_positions":8,"rotary_dim":3}"#)
        }
        let gguf: [String: GGUFValue] = ["general.architecture": .text("gpt2"), "gpt2.block_count": .uint32(1),
                                         "gpt2.embedding_length": .uint32(8), "gpt2.attention.head_count": .uint32(2),
                                         "gpt2.attention.key_length": .uint32(6), "gpt2.context_length": .uint32(8),
                                         "gpt2.vocab_size": .uint32(4)]
        #expect(throws: FormatError.headsDoNotTile(heads: 2, headDim: 6, dModel: 8)) {
            try ModelConfig(gguf: { gguf[$0] }, hasOutputTensor: false)
        }
    }

    /// The Codable form reads back to the same configuration, for every architecture.
    @Test func codableRoundTrip() throws {
        var configs = try fixtureArchs.map { try source($0).0 }
        configs.append(try config(#"{"model_type":"mistral","hidden_size":8,"num_attention_heads":2,"num_hidden_layers":1,"intermediate_size":8,"vocab_size":4,"max_position_embeddings":64,"sliding_window":16,"rope_scaling":{"type":"dynamic"}}"#))
        for c in configs {
            let back = try config(String(decoding: try JSONEncoder().encode(c), as: UTF8.self))
            #expect(back == c, "\(c.architecture)")
        }
        #expect(Set(configs.map(\.architecture)).count >= 4)
    }

    /// Mistral is read the same way by Formats and the engine: llama with a window that masks, not bounds;
    /// an explicit head size (GGUF `attention.key_length`, config.json `head_dim`) wins over d_model/heads.
    @Test func mistralAndExplicitHeadSize() throws {
        let json = #"{"model_type":"mistral","hidden_size":8,"num_attention_heads":2,"num_key_value_heads":1,"num_hidden_layers":1,"intermediate_size":8,"vocab_size":4,"max_position_embeddings":32768,"sliding_window":4096,"head_dim":6}"#
        let cfg = try config(json)
        #expect(cfg.family == .llama && cfg.architecture == .mistral && cfg.maxPositions == 32768 && cfg.slidingWindow == 4096)
        #expect(cfg.headDim == 6 && cfg.qDim == 12 && cfg.rotaryDim == 6)
        let meta: [String: GGUFValue] = [
            "general.architecture": .text("llama"), "llama.block_count": .uint32(1), "llama.embedding_length": .uint32(8),
            "llama.attention.head_count": .uint32(2), "llama.attention.key_length": .uint32(6),
            "llama.context_length": .uint32(64), "llama.vocab_size": .uint32(4), "llama.feed_forward_length": .uint32(8),
        ]
        let g = try ModelConfig(gguf: { meta[$0] }, hasOutputTensor: true)
        #expect(g.headDim == 6 && g.rotaryDim == 6 && g.qDim == 12 && !g.tiedHead)
    }

    @Test func fixtureConfigsParse() throws {
        let (llama, _) = try source("llama"), (qwen, _) = try source("qwen2"), (gptj, _) = try source("gptj")
        #expect(llama.nKVHead == 2 && llama.headDim == 8 && llama.ropeTheta == 500 && !llama.tiedHead && !llama.attentionBias)
        #expect(qwen.family == .llama && qwen.architecture == .qwen2 && qwen.attentionBias && !qwen.attentionOutBias && qwen.tiedHead && qwen.normEps == 1e-6)
        #expect(gptj.rotaryDim == 4 && gptj.dFF == 64 && gptj.engine.traits.parallel && !gptj.tiedHead)
    }
}
