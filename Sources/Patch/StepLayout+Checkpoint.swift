import Formats

extension StepLayout {
    /// The patch layout of a checkpoint tensor's storage; nil for tensors factors cannot address (vectors).
    public init?(_ layout: Formats.StorageLayout) {
        switch layout {
        case .rowMajor: self = .rowMajor
        case .conv1D: self = .transposed
        case let .permutedRows(heads): self.init(order: .rowMajor, rowPermutation: .llamaRope(heads: heads))
        case .vector: return nil
        }
    }
}

extension TensorBytes {
    /// A checkpoint tensor's stored bytes, seen as its logical matrix [out, in].
    public init?(_ checkpoint: Checkpoint, _ t: CheckpointTensor) {
        guard t.logicalShape.count == 2 else { return nil }
        self.init(dtype: t.dtype, rows: t.logicalShape[0], cols: t.logicalShape[1], bytes: Array(checkpoint.data(t)))
    }

    /// The logical matrix [rows, cols] row-major as f32, whatever the storage order.
    public func logicalFloats(_ layout: StepLayout) throws -> [Float] {
        var stored = [Float](repeating: 0, count: rows * cols)
        try bytes.withUnsafeBytes { raw in
            try stored.withUnsafeMutableBufferPointer { try TensorCodec.dequantize(dtype, raw, into: $0) }
        }
        if layout == .rowMajor { return stored }
        var out = [Float](repeating: 0, count: rows * cols)
        for i in 0..<rows { for j in 0..<cols { out[i * cols + j] = stored[layout.storageIndex(row: i, col: j, rows: rows, cols: cols)] } }
        return out
    }
}
