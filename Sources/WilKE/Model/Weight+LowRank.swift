// Edits and patch steps in memory: a weight is its stored matrix plus a low-rank term,
// W_eff = W + Aᵀ B with A [R, rows] and B [R, cols] (one row per rank-one component), applied inside
// the products as two thin GEMMs, so an edited or patched matrix never needs a dense copy. Legend as in
// Weight+Matmul.swift: N rows (packed tokens), C = cols, OC = rows, R the term's rank.
import Synchronization

/// The per-stored-matrix state shared by a view and every weight `adding` made from it.
final class StoredState: Sendable {
    /// The f32 copy of the stored matrix (`cachedF32`, made at most once).
    let cache = Mutex<(tried: Bool, buffer: FloatBuffer?)>((false, nil))
    let cacheable = Mutex(false)
    /// Σ W_ij² of the stored matrix, once computed.
    let normSquared = Mutex<Double?>(nil)
}

/// Aᵀ B, held as its factors: f32, immutable (a new term is a new value), so threads read it freely.
struct LowRank: Sendable {
    let rank: Int
    /// A [R, rows]: component t's left vector (over output features) at a[t * rows ..< (t + 1) * rows].
    let a: [Float]
    /// B [R, cols]: component t's right vector (over input features).
    let b: [Float]

    /// Component count above which a dense f32 matrix is cheaper to multiply by than the factors:
    /// R·(rows + cols) > rows·cols / 4. A lifelong run that keeps editing one tensor folds its term
    /// into one f32 copy there (`Weight.adding`), so its cost per product stays within 1.25x of W's.
    static func foldRank(rows: Int, cols: Int) -> Int { max(1, rows * cols / (4 * (rows + cols))) }

    /// out [N, OC] += (inp [N, C] · Bᵀ) · A
    func forward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, n: Int, rows: Int, cols: Int) {
        Self.through(a: b, b: a, inp: inp, out: out, n: n, inWidth: cols, outWidth: rows, rank: rank)
    }

    /// dinp [N, C] += (dout [N, OC] · Aᵀ) · B
    func backward(dinp: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, n: Int, rows: Int, cols: Int) {
        Self.through(a: a, b: b, inp: dout, out: dinp, n: n, inWidth: rows, outWidth: cols, rank: rank)
    }

    /// out [N, outWidth] += (inp [N, inWidth] · Pᵀ) · Q through the rank: the forward with (P, Q) = (B, A)
    /// and the backward with (A, B) are the same two thin products.
    /// - a: P [R, inWidth]; b: Q [R, outWidth]
    private static func through(a p: [Float], b q: [Float], inp: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>,
                                n: Int, inWidth: Int, outWidth: Int, rank: Int) {
        Scratch.with(count: n * rank) { t in
            p.withUnsafeBufferPointer { p in
                q.withUnsafeBufferPointer { q in
                    if n == 1 {
                        BLAS.sgemv(trans: false, m: rank, n: inWidth, a: p.baseAddress!, lda: inWidth, x: inp, y: t)
                        BLAS.sgemv(trans: true, m: rank, n: outWidth, a: q.baseAddress!, lda: outWidth, x: t, beta: 1, y: out)
                    } else {
                        BLAS.sgemm(transA: false, transB: true, m: n, n: rank, k: inWidth, a: inp, lda: inWidth,
                                   b: p.baseAddress!, ldb: inWidth, c: t, ldc: rank)
                        BLAS.sgemm(transA: false, transB: false, m: n, n: outWidth, k: rank, a: t, lda: rank,
                                   b: q.baseAddress!, ldb: outWidth, beta: 1, c: out, ldc: outWidth)
                    }
                }
            }
        }
    }

    /// out [rows, cols] += Aᵀ B
    func addProduct(into out: UnsafeMutablePointer<Float>, rows: Int, cols: Int) {
        a.withUnsafeBufferPointer { a in
            b.withUnsafeBufferPointer { b in
                BLAS.sgemm(transA: true, transB: false, m: rows, n: cols, k: rank, a: a.baseAddress!, lda: rows,
                           b: b.baseAddress!, ldb: cols, beta: 1, c: out, ldc: cols)
            }
        }
    }

    /// dst [cols] += row r of Aᵀ B (an embedding lookup on a patched table).
    func addRow(_ r: Int, rows: Int, cols: Int, into dst: UnsafeMutablePointer<Float>) {
        for t in 0..<rank {
            let s = a[t * rows + r]
            for j in 0..<cols { dst[j] += s * b[t * cols + j] }
        }
    }

    /// The term of logical rows `range` of a [rows, ·] matrix: A's columns `range`, B as is.
    func rows(_ range: Range<Int>, of rows: Int) -> LowRank {
        var part = [Float](); part.reserveCapacity(rank * range.count)
        for t in 0..<rank { part += a[(t * rows + range.lowerBound)..<(t * rows + range.upperBound)] }
        return LowRank(rank: rank, a: part, b: b)
    }

    /// `self` followed by `other`'s components.
    func appending(_ other: LowRank) -> LowRank { LowRank(rank: rank + other.rank, a: a + other.a, b: b + other.b) }

    /// ‖W + AᵀB‖² = ‖W‖² + 2⟨W, AᵀB⟩ + ‖AᵀB‖², exactly in real arithmetic, with ⟨W, AᵀB⟩ = Σ_t A_t·(W B_tᵀ)
    /// (one product of W with B's R rows) and ‖AᵀB‖² = Σ (AAᵀ)∘(BBᵀ) (two R×R Grams): O(R·rows·cols)
    /// work and O(R·(rows + cols)) memory instead of a dense copy. f32 products, f64 sums: the relative
    /// error is ~1e-7 of the cross term, far below what the norm is used for (LA, the eval's log).
    func sumOfSquares(over w: Weight, storedSquares: Double) -> Double {
        let (rows, cols, r) = (w.rows, w.cols, rank)
        var cross = 0.0, square = 0.0
        b.withUnsafeBufferPointer { b in
            a.withUnsafeBufferPointer { a in
                Scratch.with(count: r * rows) { wb in
                    w.forwardStored(out: wb, inp: b.baseAddress!, bias: nil, n: r)  // [R, rows] = B Wᵀ
                    for i in 0..<(r * rows) { cross += Double(wb[i]) * Double(a[i]) }
                }
                Scratch.with(count: 2 * r * r) { g in
                    BLAS.sgemm(transA: false, transB: true, m: r, n: r, k: rows, a: a.baseAddress!, lda: rows,
                               b: a.baseAddress!, ldb: rows, c: g, ldc: r)
                    BLAS.sgemm(transA: false, transB: true, m: r, n: r, k: cols, a: b.baseAddress!, lda: cols,
                               b: b.baseAddress!, ldb: cols, c: g + r * r, ldc: r)
                    for i in 0..<(r * r) { square += Double(g[i]) * Double(g[r * r + i]) }
                }
            }
        }
        return max(0, storedSquares + 2 * cross + square)
    }
}

extension Weight {
    /// This matrix plus Σ_t left_t ⊗ right_t, as a new weight over the same stored matrix (its view and
    /// f32 copy shared, nothing dequantized); `self` is unchanged, so keeping it is the roll-back.
    /// Past `LowRank.foldRank` components the sum is folded into one owned f32 matrix instead.
    /// - left: [k, rows] (component-major); right: [k, cols]
    func adding(left: [Float], right: [Float], rank k: Int) -> Weight {
        precondition(left.count == k * rows && right.count == k * cols, "a rank-\(k) term of a [\(rows), \(cols)] weight")
        let term = LowRank(rank: k, a: left, b: right)
        let sum = lowRank.map { $0.appending(term) } ?? term
        let next = with(sum)
        guard sum.rank > LowRank.foldRank(rows: rows, cols: cols) else { return next }
        let folded = Weight(next.materialize(), rows: rows, cols: cols)
        return folded
    }
}
