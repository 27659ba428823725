import Formats
import Patch

/// A `WeightSource` that serves a checkpoint with patches applied in memory only: each touched tensor's
/// bytes go through the patch arithmetic (`TensorDelta.apply`, hashes checked) when the engine asks
/// for it; every other tensor comes from the checkpoint unchanged. Nothing is written.
public struct PatchedWeights: WeightSource {
    public let base: CheckpointWeights
    /// Per stored tensor name, its steps in order.
    private let steps: [String: [PatchStep]]

    /// - Throws: when a patch names a tensor the checkpoint does not have.
    public init(_ checkpoint: Checkpoint, patches: [Patch]) throws {
        base = CheckpointWeights(checkpoint)
        var steps: [String: [PatchStep]] = [:]
        for s in patches.flatMap(\.steps) {
            guard let t = checkpoint.tensor(s.tensor) else { throw WilKEError.missingTensor(s.tensor) }
            steps[t.name, default: []].append(s)
        }
        self.steps = steps
    }

    public func has(_ name: String) -> Bool { base.has(name) }

    public func tensor(_ name: String) throws -> (shape: [Int], values: [Float]) {
        let ckpt = base.checkpoint
        guard let t = ckpt.tensor(name), let chain = steps[t.name] else { return try base.tensor(name) }
        var x = ckpt.tensorBytes(t)
        for s in chain { x = try TensorDelta.apply(s, to: x) }
        // Patched tensors are F32, F16 or BF16: decode, then undo the storage layout like the checkpoint does.
        var stored = [Float](repeating: 0, count: t.elementCount)
        try x.bytes.withUnsafeBytes { raw in try stored.withUnsafeMutableBufferPointer { try TensorCodec.dequantize(x.dtype, raw, into: $0) } }
        return (t.logicalShape, Checkpoint.logical(stored, of: t))
    }
}
