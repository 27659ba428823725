import Formats

/// The engine's `WeightSource` over an opened checkpoint: canonical (GGUF-style) names, values
/// dequantized to f32 in the logical [out, in] layout with Hugging Face row order. The checkpoint does
/// the per-format work (Conv1D transposition, GGUF Q/K un-permutation).
public struct CheckpointWeights: WeightSource {
    public let checkpoint: Checkpoint

    public init(_ checkpoint: Checkpoint) { self.checkpoint = checkpoint }

    public func tensor(_ name: String) throws -> (shape: [Int], values: [Float]) {
        guard let t = checkpoint.tensor(name) else { throw WilKEError.missingTensor(name) }
        // Named here, as Weight does for matrices: the codec's own error knows the dtype, not the tensor.
        guard TensorCodec.canDequantize(t.dtype) else { throw WilKEError.uncomputableDType(tensor: name, dtype: t.dtype.name) }
        return (t.logicalShape, checkpoint.engineValues(name, try checkpoint.logical(t)))
    }

    public func has(_ name: String) -> Bool { checkpoint.tensor(name) != nil }
}

extension Checkpoint {
    /// `values` of tensor `name` in the engine's convention. Gemma's RMSNorm scales by 1 + w: a GGUF stores
    /// 1 + w (llama.cpp's converter adds the 1), a Hugging Face checkpoint w, and the engine reads the GGUF
    /// form, so a safetensors Gemma 3 norm gets its 1 here.
    func engineValues(_ name: String, _ values: [Float]) -> [Float] {
        guard config?.family == .gemma3, gguf == nil, name.hasSuffix("norm.weight") else { return values }
        return values.map { $0 + 1 }
    }
}

extension CheckpointWeights: StoredWeightSource {
    /// Matrices stay in the mapping: a view of their stored bytes, no copy.
    func weight(_ name: String) throws -> Weight? {
        guard let t = checkpoint.tensor(name), t.shape.count == 2 else { return nil }
        return try Weight(t, bytes: checkpoint.data(t), owner: checkpoint)
    }
}
