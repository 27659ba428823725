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
        let cfg = try ModelConfig(hfConfigJSON: Data(contentsOf: URL(fileURLWithPath: dir + "/config.json")))
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

    @Test func unsupportedConfigsAreRejected() throws {
        #expect(throws: WilKEError.unsupportedArchitecture("bert")) {
            try ModelConfig(hfConfigJSON: Data(#"{"model_type": "bert"}"#.utf8))
        }
        #expect(throws: WilKEError.invalidConfig("n_layer is missing or not a number")) {
            try ModelConfig(hfConfigJSON: Data(#"{"model_type": "gpt2", "n_embd": 8, "n_head": 2}"#.utf8))
        }
        let llama3 = #"{"model_type":"llama","hidden_size":8,"num_attention_heads":2,"num_hidden_layers":1,"intermediate_size":8,"vocab_size":4,"rope_scaling":{"rope_type":"llama3","factor":8}}"#
        #expect(throws: WilKEError.invalidConfig("rope type llama3 is not supported")) {
            try ModelConfig(hfConfigJSON: Data(llama3.utf8))
        }
    }

    /// Mistral is read the same way by Formats and the engine: llama, positions bounded by its window;
    /// an explicit head size (GGUF `attention.key_length`, config.json `head_dim`) wins over d_model/heads.
    @Test func mistralAndExplicitHeadSize() throws {
        let json = #"{"model_type":"mistral","hidden_size":8,"num_attention_heads":2,"num_key_value_heads":1,"num_hidden_layers":1,"intermediate_size":8,"vocab_size":4,"max_position_embeddings":32768,"sliding_window":4096,"head_dim":6}"#
        let cfg = try ModelConfig(hfConfigJSON: Data(json.utf8))
        #expect(cfg.arch == .llama && cfg.maxPositions == 4096 && cfg.headDim == 6 && cfg.qDim == 12)
        let hp = try Hyperparameters(configJSON: Data(json.utf8), path: "config.json")
        #expect(hp.family == "llama" && hp.headDim == 6)
        let meta: [String: GGUFValue] = [
            "general.architecture": .text("llama"), "llama.block_count": .uint32(1), "llama.embedding_length": .uint32(8),
            "llama.attention.head_count": .uint32(2), "llama.attention.key_length": .uint32(6),
            "llama.context_length": .uint32(64), "llama.vocab_size": .uint32(4), "llama.feed_forward_length": .uint32(8),
        ]
        let g = try Hyperparameters(gguf: { meta[$0] }, hasOutputTensor: true)
        let engine = try ModelConfig(g)
        #expect(g.headDim == 6 && g.rotaryDim == 6 && engine.qDim == 12)
    }

    @Test func fixtureConfigsParse() throws {
        let (llama, _) = try source("llama"), (qwen, _) = try source("qwen2"), (gptj, _) = try source("gptj")
        #expect(llama.nKVHead == 2 && llama.headDim == 8 && llama.ropeTheta == 500 && !llama.tiedHead && !llama.attentionBias)
        #expect(qwen.arch == .llama && qwen.attentionBias && !qwen.attentionOutBias && qwen.tiedHead && qwen.normEps == 1e-6)
        #expect(gptj.rotaryDim == 4 && gptj.dFF == 64 && gptj.parallelBlock && !gptj.tiedHead)
    }
}
