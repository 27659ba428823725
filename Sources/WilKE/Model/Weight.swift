import Formats
import Synchronization

/// One weight matrix W [rows, cols] in the logical nn.Linear layout [out, in] (y = W x), kept in the
/// form it is stored in: a view into the checkpoint's mapping (F32, F16, BF16, the legacy and K quants:
/// every type `TensorCodec` dequantizes), or an owned f32 buffer (tests, decoded or edited values).
///
/// Nothing is copied at load. The storage layout (`StorageLayout`: transposed Conv1D, GGUF's llama Q/K
/// row permutation) and the row offset of a fused tensor (GPT-2's c_attn) are part of the view; the
/// kernels in `Weight+Matmul.swift` read through them. Quantized and half weights are dequantized a few
/// MiB at a time into a scratch buffer and multiplied with sgemm, so peak memory is the mapping plus
/// one scratch per calling thread, not 4 bytes per parameter.
final class Weight: @unchecked Sendable {
    /// Logical shape: out features × in features.
    let rows: Int, cols: Int
    /// Element type of the stored bytes.
    let dtype: DType
    /// How the logical matrix sits in the stored grid.
    let layout: StorageLayout
    /// The stored grid [storedRows, storedCols], row-major (storedCols contiguous): [rows', cols] for
    /// row-major and permuted layouts, [cols, rows'] for Conv1D, where rows' ≥ rows for a fused tensor.
    let storedRows: Int, storedCols: Int
    /// First logical row inside the stored grid (a stored row, or a stored column for Conv1D).
    let offset: Int
    /// Start of the stored grid and the object that keeps it alive (a `Checkpoint`, a `FloatBuffer`).
    let base: UnsafeRawPointer
    private let owner: AnyObject
    /// Bytes of one stored row.
    let rowBytes: Int
    /// What belongs to the stored matrix rather than to this value: its f32 copy and ‖W‖², shared by
    /// every weight made from it by `adding` (an edit adds a term, it does not re-dequantize the base).
    let stored: StoredState
    /// The edits and patch steps on top of the stored matrix: W_eff = W + Aᵀ B (nil: none).
    let lowRank: LowRank?
    /// Whether this matrix may have an f32 copy (`cachedF32`); set at load for the whole model.
    var cacheable: Bool {
        get { stored.cacheable.withLock { $0 } }
        set { stored.cacheable.withLock { $0 = newValue } }
    }

    private init(rows: Int, cols: Int, dtype: DType, layout: StorageLayout, storedRows: Int, storedCols: Int,
                 offset: Int, base: UnsafeRawPointer, owner: AnyObject, stored: StoredState = StoredState(),
                 lowRank: LowRank? = nil) {
        self.rows = rows; self.cols = cols; self.dtype = dtype; self.layout = layout
        self.storedRows = storedRows; self.storedCols = storedCols; self.offset = offset
        self.base = base; self.owner = owner
        rowBytes = dtype.byteCount(elements: storedCols) ?? 0
        self.stored = stored; self.lowRank = lowRank
    }

    /// The same stored matrix with `lowRank` as its term (`adding`): shares the view and its f32 copy.
    func with(_ lowRank: LowRank?) -> Weight {
        Weight(rows: rows, cols: cols, dtype: dtype, layout: layout, storedRows: storedRows, storedCols: storedCols,
               offset: offset, base: base, owner: owner, stored: stored, lowRank: lowRank)
    }

    /// An owned f32 matrix [rows, cols], row-major.
    convenience init(_ values: FloatBuffer, rows: Int, cols: Int) {
        precondition(values.count == rows * cols, "a [\(rows), \(cols)] weight needs \(rows * cols) values")
        self.init(rows: rows, cols: cols, dtype: .f32, layout: .rowMajor, storedRows: rows, storedCols: cols,
                  offset: 0, base: UnsafeRawPointer(values.p), owner: values)
    }

    /// A view of a 2-D checkpoint tensor in its stored form; `owner` keeps `bytes` mapped.
    convenience init(_ t: CheckpointTensor, bytes: UnsafeRawBufferPointer, owner: AnyObject) throws {
        try self.init(name: t.name, dtype: t.dtype, shape: t.shape, layout: t.layout, bytes: bytes, owner: owner)
    }

    /// A view of the stored grid `shape` ([storedRows, storedCols]) of `dtype` in `layout`.
    /// - Throws: `WilKEError.uncomputableDType` when no kernel reads `dtype`, `.tensorSize` when the
    ///   byte count does not match the shape (whole blocks per stored row).
    init(name: String, dtype: DType, shape: [Int], layout: StorageLayout, bytes: UnsafeRawBufferPointer,
         owner: AnyObject) throws {
        guard shape.count == 2, let base = bytes.baseAddress else {
            throw WilKEError.tensorShape(name: name, expected: [0, 0], found: shape)
        }
        guard Weight.canCompute(dtype) else { throw WilKEError.uncomputableDType(tensor: name, dtype: dtype.name) }
        let (sr, sc) = (shape[0], shape[1])
        guard let need = dtype.byteCount(elements: sc), need * sr == bytes.count else {
            throw WilKEError.tensorSize(name: name, expected: sr * sc, found: bytes.count)
        }
        let conv = layout == .conv1D
        (rows, cols) = conv ? (sc, sr) : (sr, sc)
        self.dtype = dtype; self.layout = layout == .vector ? .rowMajor : layout
        storedRows = sr; storedCols = sc; offset = 0
        self.base = base; self.owner = owner
        rowBytes = need
        stored = StoredState(); lowRank = nil
    }

    /// Element types a weight view can be computed with: those `TensorCodec` dequantizes, with rows of
    /// whole blocks (checked per tensor by `byteCount`).
    static func canCompute(_ t: DType) -> Bool { TensorCodec.canDequantize(t) }

    /// Logical rows `range` of this matrix as a matrix of its own (GPT-2's fused q/k/v), still a view.
    func rows(_ range: Range<Int>) -> Weight {
        precondition(range.lowerBound >= 0 && range.upperBound <= rows)
        if case .permutedRows = layout { preconditionFailure("a permuted Q/K matrix is never fused") }
        // A slice is another matrix: its own f32 copy and norm, the term's columns of its rows.
        return Weight(rows: range.count, cols: cols, dtype: dtype, layout: layout, storedRows: storedRows,
                      storedCols: storedCols, offset: offset + range.lowerBound, base: base, owner: owner,
                      lowRank: lowRank?.rows(range, of: rows))
    }

    /// The f32 matrix can be read in place: a row-major or Conv1D f32 grid at a 4-byte aligned address.
    var directF32: UnsafePointer<Float>? {
        guard dtype == .f32, Int(bitPattern: base) % MemoryLayout<Float>.alignment == 0 else { return nil }
        if case .permutedRows = layout { return nil }
        return base.assumingMemoryBound(to: Float.self)
    }

    /// Stored row of logical row `r` (row-major and permuted layouts).
    @inline(__always) func storedRow(_ r: Int) -> Int { offset + layout.storageRow(r, rows: rows) }

    /// Logical row `r` ([cols] f32) into `dst`: an embedding lookup.
    func row(_ r: Int, into dst: UnsafeMutablePointer<Float>) {
        precondition(r >= 0 && r < rows)
        if layout == .conv1D { // a column of the stored grid: never an embedding, so the slow loop is fine
            Scratch.with(count: storedCols) { tmp in
                for k in 0..<cols { dequantizeStored(k..<(k + 1), into: tmp); dst[k] = tmp[offset + r] }
            }
        } else if let p = directF32 {
            dst.update(from: p + storedRow(r) * cols, count: cols)
        } else {
            dequantizeStored(storedRow(r)..<(storedRow(r) + 1), into: dst)
        }
        lowRank?.addRow(r, rows: rows, cols: cols, into: dst)
    }

    /// The whole logical matrix W + Aᵀ B as an owned f32 buffer [rows, cols]: for the algorithms that
    /// need W itself (ROME's closed form reads none of it; fingerprints of in-memory models and tests do).
    func materialize() -> FloatBuffer {
        let out = materializeStored()
        lowRank?.addProduct(into: out.p, rows: rows, cols: cols)
        return out
    }

    /// The stored matrix alone (no term) as an owned f32 buffer [rows, cols].
    func materializeStored() -> FloatBuffer {
        let out = FloatBuffer(count: rows * cols)
        if layout == .conv1D {
            Scratch.with(count: storedCols) { tmp in
                for k in 0..<cols {
                    dequantizeStored(k..<(k + 1), into: tmp)
                    for r in 0..<rows { out.p[r * cols + k] = tmp[offset + r] }
                }
            }
        } else {
            forEachRowPanel { r0, p, panel in (out.p + r0 * cols).update(from: panel, count: p * cols) }
        }
        return out
    }
}
