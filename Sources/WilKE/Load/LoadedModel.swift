import Foundation
import Formats
import Patch
import Synchronization

/// A checkpoint ready to run: the engine with its weights decoded, and the tokenizer that goes with it
/// (from GGUF `tokenizer.ggml.*` metadata or a Hugging Face `tokenizer.json`).
public final class LoadedModel: @unchecked Sendable {
    public let checkpoint: Checkpoint
    public let config: ModelConfig
    public let model: TransformerModel
    public let tokenizer: any Tokenizer
    /// The patches applied in memory, in order (their ids name the model beside the checkpoint's bytes).
    public let patchIDs: [String]
    private let fingerprintOnce = Mutex<ModelFingerprint?>(nil)

    /// The checkpoint's fingerprint (`ModelFingerprint`: one SHA-256 pass over its stored bytes, patches
    /// not included), computed on first use and shared by the statistics and template caches.
    public var checkpointFingerprint: ModelFingerprint {
        fingerprintOnce.withLock { fp in
            if let fp { return fp }
            let made = ModelFingerprint(checkpoint: checkpoint, nLayer: config.nLayer)
            fp = made
            return made
        }
    }

    public convenience init(path: String) throws {
        try self.init(checkpoint: try Checkpoint.open(path))
    }

    public convenience init(checkpoint: Checkpoint) throws {
        try self.init(checkpoint: checkpoint, patches: [])
    }

    /// The checkpoint with `patches` applied in memory only (`PatchedWeights`); the file is not changed.
    public init(checkpoint: Checkpoint, patches: [Patch]) throws {
        self.checkpoint = checkpoint
        patchIDs = patches.map(\.id)
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
