import Formats

// How a checkpoint's tensors look to the patch arithmetic: the logical [rows, cols] matrix, the
// layout a step records for its storage, and its bytes as `TensorBytes`.

extension CheckpointTensor {
    /// The layout a patch step records for this tensor's storage: its `layout`, with `.vector` and
    /// tensors of more than two dimensions seen as row-major [elements / last, last]; they carry rank-0
    /// (residue-only) steps, not factors.
    public var stepLayout: StorageLayout { layout == .vector ? .rowMajor : layout }

    /// Logical [rows, cols]: the matrix W [out, in] of a weight, [1, n] for a vector.
    public var stepShape: (rows: Int, cols: Int) {
        switch layout {
        case .conv1D: return (shape[1], shape[0])
        case .rowMajor, .permutedRows:
            if shape.count == 2 { return (shape[0], shape[1]) }
            fallthrough
        case .vector:
            let last = shape.last ?? 1
            return (last == 0 ? 0 : elementCount / last, last)
        }
    }
}

extension Checkpoint {
    /// The tensor's bytes (copied out of the mapping) with its patch view.
    public func tensorBytes(_ t: CheckpointTensor) -> TensorBytes {
        let (rows, cols) = t.stepShape
        return TensorBytes(dtype: t.dtype, rows: rows, cols: cols, bytes: Array(data(t)))
    }

    /// SHA-256 of the tensor's stored bytes, read straight from the mapping.
    public func sha256(_ t: CheckpointTensor) -> String { Hash.sha256Hex(data(t)) }

    /// The tensor a patch names: stored name first, then canonical name.
    func patchTarget(_ name: String) throws -> CheckpointTensor {
        guard let t = tensor(name) else { throw PatchError.missingTensor(name) }
        return t
    }

    /// "gguf" or "safetensors": the `base.format` a patch for this checkpoint records.
    public var patchFormat: String {
        if case .gguf = format { return "gguf" }
        return "safetensors"
    }

    /// The architecture a patch for this checkpoint records ("unknown" without hyper-parameters).
    public var patchArchitecture: String { architecture ?? "unknown" }
}

/// A fingerprint check of one tensor against what a patch expects, before any arithmetic.
func checkFingerprint(_ t: CheckpointTensor, name: String, dtype: DType, rows: Int, cols: Int, layout: StorageLayout) throws {
    guard t.dtype == dtype else { throw PatchError.dtypeMismatch(tensor: name, expected: dtype.name, found: t.dtype.name) }
    let (r, c) = t.stepShape
    guard r == rows, c == cols else { throw PatchError.shapeMismatch(tensor: name, expected: "[\(rows), \(cols)]", found: "[\(r), \(c)]") }
    guard t.stepLayout == layout else {
        throw PatchError.incompatibleBase("tensor \(name) is stored in another layout than the patch expects")
    }
}
