import Foundation
import Formats
import Patch

/// A checkpoint ready to run: the engine with its weights decoded, and the tokenizer that goes with it
/// (from GGUF `tokenizer.ggml.*` metadata or a Hugging Face `tokenizer.json`).
public final class LoadedModel: @unchecked Sendable {
    public let checkpoint: Checkpoint
    public let config: ModelConfig
    public let model: TransformerModel
    public let tokenizer: any Tokenizer

    public convenience init(path: String) throws {
        try self.init(checkpoint: try Checkpoint.open(path))
    }

    public convenience init(checkpoint: Checkpoint) throws {
        try self.init(checkpoint: checkpoint, patches: [])
    }

    /// The checkpoint with `patches` applied in memory only (`PatchedWeights`); the file is not changed.
    public init(checkpoint: Checkpoint, patches: [Patch]) throws {
        self.checkpoint = checkpoint
        config = try checkpoint.requiredConfig()
        let weights: any WeightSource = patches.isEmpty ? CheckpointWeights(checkpoint) : try PatchedWeights(checkpoint, patches: patches)
        model = try TransformerModel(config: config, weights: weights)
        tokenizer = try LoadedModel.tokenizer(for: checkpoint)
    }

    static func tokenizer(for c: Checkpoint) throws -> any Tokenizer {
        if let g = c.gguf { return try BPETokenizer(gguf: g) }
        guard let path = c.tokenizerPath, let data = try? FileAccess.read(path) else {
            throw WilKEError.unsupportedTokenizer("no tokenizer.json next to \(c.path)")
        }
        return try BPETokenizer(tokenizerJSON: data)
    }
}

extension LoadedModel {
    /// Just the tokenizer of a checkpoint, without decoding any weights.
    public static func tokenizerOnly(path: String) throws -> any Tokenizer {
        try tokenizer(for: try Checkpoint.open(path))
    }
}
