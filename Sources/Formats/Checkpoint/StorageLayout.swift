/// How a 2-D weight's logical matrix W [out, in] (the nn.Linear convention, y = W x) sits in the file.
/// The Patch and WilKE modules work on the logical matrix and use this to address storage.
public enum StorageLayout: Equatable, Sendable, Codable {
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
    /// `rows` logical rows. HF row h*hd + c*half + i is stored at h*hd + 2*i + c.
    public func storageRow(_ row: Int, rows: Int) -> Int {
        guard case let .permutedRows(heads) = self else { return row }
        let hd = rows / heads, half = hd / 2
        let h = row / hd, r = row % hd, c = r / half, i = r % half
        return h * hd + 2 * i + c
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
