import Formats
import Patch

/// A `WeightSource` that serves a checkpoint with patches applied in memory only: a touched matrix is
/// its stored view plus the steps' low-rank term where that is the same sum (see `weight`), else its
/// bytes go through the patch arithmetic (`TensorDelta.apply`, hashes checked); every other tensor
/// comes from the checkpoint unchanged. Nothing is written.
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
        let x = try patched(t, chain)
        // The result's bytes (possibly promoted to another dtype) in `t`'s storage layout.
        let values = try x.bytes.withUnsafeBytes { try t.layout.logical($0, dtype: x.dtype, shape: t.shape) }
        return (t.logicalShape, ckpt.engineValues(name, values))
    }

    /// The stored bytes of `t` after `chain` (hashes checked by the patch arithmetic).
    private func patched(_ t: CheckpointTensor, _ chain: [PatchStep]) throws -> TensorBytes {
        var x = base.checkpoint.tensorBytes(t)
        for s in chain { x = try TensorDelta.apply(s, to: x) }
        return x
    }
}

extension PatchedWeights: StoredWeightSource {
    /// A patched matrix is the checkpoint's view plus its steps' factors as a low-rank term (no copy)
    /// when its result is F32 without a forward residue (an edit of a quantized or F32 tensor: the
    /// sum up to f32 rounding, `StepFactors`); a result rounded to F16/BF16 or fixed by a residue is its
    /// result bytes (what `wilke apply` writes), the one exact reading of it. Every other matrix is a view.
    func weight(_ name: String) throws -> Weight? {
        let ckpt = base.checkpoint
        guard let t = ckpt.tensor(name), t.shape.count == 2 else { return nil }
        guard let chain = steps[t.name] else { return try base.weight(name) }
        let (rows, cols) = t.stepShape
        if let view = try base.weight(name),
           let term = try StepFactors.term(of: chain, dtype: t.dtype, rows: rows, cols: cols, layout: t.stepLayout, sha256: ckpt.sha256(t)) {
            return term.rank == 0 ? view : view.adding(left: term.a, right: term.b, rank: term.rank)
        }
        return try Weight(t, result: try patched(t, chain))
    }
}

extension Weight {
    /// `result` (the bytes of tensor `t` after patch steps, possibly promoted to another dtype) as a
    /// weight in `t`'s storage layout: the one bytes -> logical conversion of edited tensors.
    convenience init(_ t: CheckpointTensor, result: TensorBytes) throws {
        let owned = OwnedBytes(result.bytes)
        try self.init(name: t.name, dtype: result.dtype, shape: t.shape, layout: t.layout, bytes: owned.bytes, owner: owned)
    }
}

/// Bytes with a stable address for a `Weight` to view (a patch result lives in a Swift array otherwise).
final class OwnedBytes: @unchecked Sendable {
    let bytes: UnsafeRawBufferPointer

    init(_ source: [UInt8]) {
        let p = UnsafeMutableRawBufferPointer.allocate(byteCount: max(source.count, 1), alignment: 64)
        source.withUnsafeBytes { if let b = $0.baseAddress { p.baseAddress!.copyMemory(from: b, byteCount: source.count) } }
        bytes = UnsafeRawBufferPointer(start: p.baseAddress, count: source.count)
    }

    deinit { UnsafeMutableRawPointer(mutating: bytes.baseAddress)?.deallocate() }
}
