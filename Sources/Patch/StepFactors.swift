import Formats

/// A chain of steps on one tensor read as "the stored tensor plus a low-rank term", for an engine that
/// multiplies by W + Aᵀ B instead of the result bytes (`wilke ask --patch`). Exact bytes stay the job of
/// `TensorDelta.apply` (what `wilke apply` writes); this is the same sum without its per-step rounding.
public enum StepFactors {
    /// The chain's term as A [k, rows] (a[t*rows + i] = Float(u[i, t]·scale), the pinned product of
    /// docs/PATCH_FORMAT.md §4) and B [k, cols] (b[t*cols + j] = v[j, t]), steps in order, in the logical
    /// [rows, cols] of the tensor, or nil when the result is not that sum up to f32 rounding: a result
    /// rounded to F16/BF16 (the rounding is part of what apply writes, up to half an ulp per element) or
    /// a forward residue (bytes fixed to a target). Then only the dense result is exact.
    /// - Parameters:
    ///   - dtype, rows, cols, layout, sha256: the stored tensor the chain starts from.
    /// - Throws: a malformed step, a broken chain (types, shapes, layouts, hashes that do not link), or a
    ///   first step made for another tensor (`baseMismatch`), as `TensorDelta.apply` would.
    public static func term(of chain: [PatchStep], dtype: DType, rows: Int, cols: Int, layout: StorageLayout,
                            sha256: String) throws -> (a: [Float], b: [Float], rank: Int)? {
        var (inType, inHash) = (dtype, sha256)
        var a: [Float] = [], b: [Float] = [], rank = 0
        for (n, s) in chain.enumerated() {
            try s.checkWellFormed()
            guard s.dtype == inType else { throw PatchError.dtypeMismatch(tensor: s.tensor, expected: inType.name, found: s.dtype.name) }
            guard s.rows == rows, s.cols == cols else {
                throw PatchError.shapeMismatch(tensor: s.tensor, expected: "[\(rows), \(cols)]", found: "[\(s.rows), \(s.cols)]")
            }
            guard s.layout == layout else { throw PatchError.brokenChain(tensor: s.tensor, step: n, reason: "layout differs from the tensor's") }
            guard s.baseSHA256 == inHash else { throw PatchError.baseMismatch(tensor: s.tensor, expected: s.baseSHA256, found: inHash) }
            (inType, inHash) = (s.resultDType, s.resultSHA256)
            guard s.resultDType == .f32, s.forwardResidue.count == 0 else { return nil }
            let k = s.rank
            var sa = [Float](repeating: 0, count: k * rows), sb = [Float](repeating: 0, count: k * cols)
            for i in 0..<rows { for t in 0..<k { sa[t * rows + i] = s.u[i * k + t] * s.scale } }
            for j in 0..<cols { for t in 0..<k { sb[t * cols + j] = s.v[j * k + t] } }
            a += sa; b += sb; rank += k
        }
        return (a, b, rank)
    }
}
