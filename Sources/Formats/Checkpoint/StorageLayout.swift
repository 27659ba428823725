/// How a 2-D weight's logical matrix W [out, in] (the nn.Linear convention, y = W x) sits in the file.
/// The one layout vocabulary of the toolkit: the engine's weight views read through it, and a patch
/// records it per tensor (PATCH_FORMAT.md §2.3 spells it `order` + `row_permutation`).
public enum StorageLayout: Hashable, Sendable, Codable {
    /// Stored as W itself, row-major [out, in] (safetensors nn.Linear; GGUF `ne = [in, out]`).
    case rowMajor
    /// GPT-2's HF Conv1D: stored as Wᵀ, row-major [in, out].
    case conv1D
    /// Llama Q/K in GGUF: row-major [out, in] with the rows of each head permuted from HF's rotate-half
    /// pairing to interleaved pairs (FORMATS.md §2.10). `heads` = n_head for Q, n_head_kv for K.
    case permutedRows(heads: Int)
    /// 1-D tensors (norms, biases) and anything that is not a matrix.
    case vector

    /// Storage row of logical row `row` for `.permutedRows` (identity otherwise), for a matrix with
    /// `rows` logical rows: llama.cpp's W.reshape(heads, 2, half, cols).swapaxes(1, 2), i.e. HF row
    /// h·hd + c·half + i is stored at h·hd + 2·i + c. The only place the permutation is written.
    @inline(__always)
    public func storageRow(_ row: Int, rows: Int) -> Int {
        guard case let .permutedRows(heads) = self else { return row }
        let hd = rows / heads, half = hd / 2
        let h = row / hd, r = row % hd, c = r / half, i = r % half
        return h * hd + 2 * i + c
    }

    /// The stored grid is Wᵀ (Conv1D): logical column j is storage row j.
    public var isTransposed: Bool { self == .conv1D }

    /// Storage element index of logical (i, j) in a [rows, cols] logical matrix.
    @inline(__always)
    public func storageIndex(row i: Int, col j: Int, rows: Int, cols: Int) -> Int {
        let r = storageRow(i, rows: rows)
        return isTransposed ? j * rows + r : r * cols + j
    }

    /// `stored` (f32 values in storage order, `shape` the stored shape) as the logical matrix W
    /// [out, in] row-major in Hugging Face's row order; non-matrices come back as they are.
    public func logical(_ stored: [Float], shape: [Int]) -> [Float] {
        guard shape.count == 2, self != .rowMajor, self != .vector else { return stored }
        let (rows, cols) = (shape[0], shape[1])
        var out = [Float](repeating: 0, count: stored.count)
        stored.withUnsafeBufferPointer { i in
            out.withUnsafeMutableBufferPointer { o in
                if isTransposed {  // stored [in, out]: stored (r, c) is logical (c, r)
                    for r in 0..<rows { for c in 0..<cols { o[c * rows + r] = i[r * cols + c] } }
                } else {
                    for r in 0..<rows {
                        (o.baseAddress! + r * cols).update(from: i.baseAddress! + storageRow(r, rows: rows) * cols, count: cols)
                    }
                }
            }
        }
        return out
    }

    /// Stored bytes of `dtype` with stored `shape` as logical f32 values: dequantize, then undo the
    /// layout. The one bytes -> logical conversion (checkpoint tensors, patch results, rebase).
    public func logical(_ bytes: UnsafeRawBufferPointer, dtype: DType, shape: [Int]) throws -> [Float] {
        var stored = [Float](repeating: 0, count: shape.reduce(1, *))
        try stored.withUnsafeMutableBufferPointer { try TensorCodec.dequantize(dtype, bytes, into: $0) }
        return logical(stored, shape: shape)
    }

    public var name: String {
        switch self {
        case .rowMajor: return "row-major [out,in]"
        case .conv1D: return "conv1d [in,out]"
        case let .permutedRows(heads): return "row-major [out,in], rows permuted (\(heads) heads)"
        case .vector: return "vector"
        }
    }
}
