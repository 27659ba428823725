import Formats

/// The engine's `WeightSource` over an opened checkpoint: canonical (GGUF-style) names, values
/// dequantized to f32 in the logical [out, in] layout with Hugging Face row order. The checkpoint does
/// the per-format work (Conv1D transposition, GGUF Q/K un-permutation).
public struct CheckpointWeights: WeightSource {
    public let checkpoint: Checkpoint

    public init(_ checkpoint: Checkpoint) { self.checkpoint = checkpoint }

    public func tensor(_ name: String) throws -> (shape: [Int], values: [Float]) {
        guard let t = checkpoint.tensor(name) else { throw WilKEError.missingTensor(name) }
        return (t.logicalShape, try checkpoint.logical(t))
    }

    public func has(_ name: String) -> Bool { checkpoint.tensor(name) != nil }
}

extension CheckpointWeights: StoredWeightSource {
    /// Matrices stay in the mapping: a view of their stored bytes, no copy.
    func weight(_ name: String) throws -> Weight? {
        guard let t = checkpoint.tensor(name), t.shape.count == 2 else { return nil }
        return try Weight(t, bytes: checkpoint.data(t), owner: checkpoint)
    }
}

extension ModelConfig {
    /// The engine configuration for a checkpoint's hyper-parameters.
    public init(_ hp: Hyperparameters) throws {
        let arch: Architecture
        switch hp.family {
        case "gpt2": arch = .gpt2
        case "gptj": arch = .gptj
        case "llama": arch = .llama
        default: throw WilKEError.unsupportedArchitecture(hp.architecture)
        }
        let qkvBias = hp.attentionBias
        self.init(arch: arch, nLayer: hp.layers, dModel: hp.dModel, nHead: hp.heads, nKVHead: hp.kvHeads,
                  headDim: hp.headDim, dFF: hp.dFF, vocabSize: hp.vocabSize, maxPositions: hp.contextLength,
                  normEps: Float(hp.normEps), ropeTheta: Float(hp.ropeTheta ?? 10000),
                  rotaryDim: arch == .gptj ? (hp.rotaryDim ?? hp.headDim) : (arch == .llama ? hp.headDim : 0),
                  tiedHead: hp.tiedEmbeddings, attentionBias: qkvBias,
                  // GPT-2's c_proj has a bias; Llama's `attention_bias` also puts one on o_proj; Qwen2's
                  // q/k/v biases and GPT-J's out_proj do not.
                  attentionOutBias: arch == .gpt2 || (qkvBias && hp.architecture != "qwen2"))
        try validate()
    }
}
