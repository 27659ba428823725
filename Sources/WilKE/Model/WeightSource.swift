/// Where the engine reads weights from: canonical GGUF-style names ("token_embd.weight",
/// "blk.3.ffn_down.weight", "output_norm.weight", "output.weight", "position_embd.weight",
/// "blk.N.attn_q.weight", "blk.N.attn_qkv.weight" for GPT-2, ...), values f32 in the logical nn.Linear
/// layout [out, in] row-major, Q/K rows in Hugging Face order (un-permuted). Checkpoint readers do the
/// dequantization, GPT-2 Conv1D transposition and GGUF Q/K un-permutation.
public protocol WeightSource {
    /// Shape (outermost first) and row-major f32 values of `name`; throws when it is absent or unreadable.
    func tensor(_ name: String) throws -> (shape: [Int], values: [Float])
    func has(_ name: String) -> Bool
}

/// An in-memory `WeightSource` (tests, and tensors already decoded elsewhere).
public struct DictionaryWeightSource: WeightSource {
    public var tensors: [String: (shape: [Int], values: [Float])]

    public init(_ tensors: [String: (shape: [Int], values: [Float])] = [:]) { self.tensors = tensors }

    public func tensor(_ name: String) throws -> (shape: [Int], values: [Float]) {
        guard let t = tensors[name] else { throw WilKEError.missingTensor(name) }
        return t
    }

    public func has(_ name: String) -> Bool { tensors[name] != nil }
}
