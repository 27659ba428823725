// The weight kernels: out = inp · Wᵀ + bias and dinp += dout · W for any `Weight`. Legend: N rows
// (packed tokens), C = cols (input width), OC = rows (output width), P a panel of rows.
//
// An f32 grid in place goes straight to sgemm / sgemv. Anything else is walked one panel at a time:
// a panel of whole stored rows is dequantized into a per-thread scratch (about 4 MiB) and multiplied
// with sgemm, so W is never materialized and the scratch is reused from call to call. For the logical
// layout a panel is P logical rows [P, C] (a permuted Q/K panel is whole heads: the permutation stays
// inside a head, so its stored rows are the same set, re-ordered while copying); for Conv1D it is P
// stored rows = P input features [P, storedCols], and the products accumulate over the panels.
import Foundation
import Synchronization
import Formats

extension Weight {
    /// Floats of dequantized weight per panel (64 MiB): every sgemm call packs the whole input x again
    /// and, in the backward, reads and writes all of dx, so a thin panel (the 8B shape's down projection
    /// gave 73 rows at 4 MiB) spends as much time packing as multiplying. 64 MiB panels cut an 8B-width
    /// Adam pass by a fifth and the δ = 0 pass by a third (docs/BENCHMARKS.md, Scale) for 2 x 60 MiB more
    /// scratch. Any value gives the same products up to summation order (tests shrink it to cross panel
    /// boundaries on small matrices; models with f32 copies never walk panels).
    nonisolated(unsafe) static var panelFloats = 1 << 24
    /// The codec splits a panel over threads from this many elements (its default is for whole tensors).
    static let panelThreshold = 1 << 16

    /// - out: [N, OC]
    /// - inp: [N, C]
    /// - bias: [OC] or nil
    func forward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, bias: UnsafePointer<Float>?, n: Int) {
        guard n > 0 else { return }
        forwardStored(out: out, inp: inp, bias: bias, n: n)
        lowRank?.forward(out: out, inp: inp, n: n, rows: rows, cols: cols)
    }

    /// `forward` with the stored matrix alone. - out: [N, OC]; inp: [N, C]; bias: [OC] or nil
    func forwardStored(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, bias: UnsafePointer<Float>?, n: Int) {
        if let w = cachedF32() { return Matmul.forward(out: out, inp: inp, weight: w, bias: bias, n: n, c: cols, oc: rows) }
        if layout == .conv1D {
            conv1DPanels { k0, k, s, ld in
                if n == 1 {
                    BLAS.sgemv(trans: true, m: k, n: rows, a: s, lda: ld, x: inp + k0, beta: k0 == 0 ? 0 : 1, y: out)
                } else {
                    BLAS.sgemm(transA: false, transB: false, m: n, n: rows, k: k, a: inp + k0, lda: cols, b: s, ldb: ld,
                               beta: k0 == 0 ? 0 : 1, c: out, ldc: rows)
                }
            }
        } else {
            rowPanels { r0, p, s in
                if n == 1 {
                    BLAS.sgemv(trans: false, m: p, n: cols, a: s, lda: cols, x: inp, y: out + r0)
                } else {
                    BLAS.sgemm(transA: false, transB: true, m: n, n: p, k: cols, a: inp, lda: cols, b: s, ldb: cols,
                               beta: 0, c: out + r0, ldc: rows)
                }
            }
        }
        if let bias {
            for i in 0..<n {
                let row = out + i * rows
                for o in 0..<rows { row[o] += bias[o] }
            }
        }
    }

    /// Accumulates the input gradient `dinp += dout · W` (weights frozen: no dW).
    /// - dinp: [N, C], accumulated
    /// - dout: [N, OC]
    func backward(dinp: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, n: Int) {
        guard n > 0 else { return }
        backwardStored(dinp: dinp, dout: dout, n: n)
        lowRank?.backward(dinp: dinp, dout: dout, n: n, rows: rows, cols: cols)
    }

    /// `backward` with the stored matrix alone. - dinp: [N, C], accumulated; dout: [N, OC]
    private func backwardStored(dinp: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, n: Int) {
        if let w = cachedF32() { return Matmul.backward(dinp: dinp, dout: dout, weight: w, n: n, c: cols, oc: rows) }
        if layout == .conv1D {
            conv1DPanels { k0, k, s, ld in
                if n == 1 {
                    BLAS.sgemv(trans: false, m: k, n: rows, a: s, lda: ld, x: dout, beta: 1, y: dinp + k0)
                } else {
                    BLAS.sgemm(transA: false, transB: true, m: n, n: k, k: rows, a: dout, lda: rows, b: s, ldb: ld,
                               beta: 1, c: dinp + k0, ldc: cols)
                }
            }
        } else {
            rowPanels { r0, p, s in
                if n == 1 {
                    BLAS.sgemv(trans: true, m: p, n: cols, a: s, lda: cols, x: dout + r0, beta: 1, y: dinp)
                } else {
                    BLAS.sgemm(transA: false, transB: false, m: n, n: cols, k: p, a: dout + r0, lda: rows, b: s,
                               ldb: cols, beta: 1, c: dinp, ldc: cols)
                }
            }
        }
    }

    /// The logical f32 copy of this matrix, made on its first product when its model is small enough
    /// (`cacheable`, see `F32Cache`; an aligned F32 grid in place needs none).
    func cachedF32() -> UnsafePointer<Float>? {
        guard cacheable, directF32 == nil else { return nil }  // an F32 grid is read in place already
        return stored.cache.withLock { state in
            if !state.tried {
                state.tried = true
                // No process-wide accounting: whether a matrix has its copy depends on its own model only,
                // so two models in one process (tests, eval runs) compute bit for bit alike.
                state.buffer = materializeStored()
            }
            return state.buffer.map { UnsafePointer($0.p) }
        }
    }

    /// ‖W + Aᵀ B‖_F²: the stored matrix's (computed once) plus the term's share from small products
    /// (`LowRank.sumOfSquares`), so an edited matrix's norm needs no dense copy.
    func sumOfSquares() -> Double {
        let w = stored.normSquared.withLock { s in
            if s == nil { s = storedSumOfSquares() }
            return s!
        }
        return lowRank.map { $0.sumOfSquares(over: self, storedSquares: w) } ?? w
    }

    /// Σ W_ij² of the stored matrix in f64, summed in logical row-major order (the order of summing
    /// `materialize()`), without materializing a row-major or permuted matrix.
    private func storedSumOfSquares() -> Double {
        var s = 0.0
        if layout == .conv1D {
            // Held in a let: a temporary's pointer would outlive the buffer (freed before the loop reads it).
            let m = materializeStored()
            for v in UnsafeBufferPointer(start: m.p, count: rows * cols) { s += Double(v) * Double(v) }
            return withExtendedLifetime(m) { s }
        }
        rowPanels { _, p, panel in
            for i in 0..<(p * cols) { s += Double(panel[i]) * Double(panel[i]) }
        }
        return s
    }

    /// Calls `body(firstRow, rowCount, panel [rowCount, C])` over the logical rows in order.
    func forEachRowPanel(_ body: (Int, Int, UnsafePointer<Float>) -> Void) { rowPanels(body) }

    private func rowPanels(_ body: (Int, Int, UnsafePointer<Float>) -> Void) {
        if let p = directF32 { body(0, rows, p + offset * cols); return }
        // A permuted panel must hold whole heads so its rows come from its own stored rows.
        var step = max(1, Weight.panelFloats / max(cols, 1))
        var heads = 0
        if case let .permutedRows(h) = layout {
            heads = h
            let hd = rows / h
            step = max(hd, step / hd * hd)
        }
        let panel = min(step, rows)
        Scratch.with(count: panel * cols) { s in
            Scratch.with(count: heads > 0 ? panel * cols : 0) { tmp in
                var r0 = 0
                while r0 < rows {
                    let p = min(panel, rows - r0)
                    if heads == 0 {
                        dequantizeStored((offset + r0)..<(offset + r0 + p), into: s)
                    } else {
                        dequantizeStored((offset + r0)..<(offset + r0 + p), into: tmp)
                        for i in 0..<p {
                            let src = storedRow(r0 + i) - offset - r0
                            (s + i * cols).update(from: tmp + src * cols, count: cols)
                        }
                    }
                    body(r0, p, s)
                    r0 += p
                }
            }
        }
    }

    /// Calls `body(firstInput, inputCount, panel, ld)` over Conv1D's stored rows (input features) in
    /// order; the logical block W[:, k0 ..< k0+k]ᵀ is `panel` [k, OC] with leading dimension `ld`.
    private func conv1DPanels(_ body: (Int, Int, UnsafePointer<Float>, Int) -> Void) {
        if let p = directF32 { body(0, cols, p + offset, storedCols); return }
        let panel = min(max(1, Weight.panelFloats / max(storedCols, 1)), cols)
        Scratch.with(count: panel * storedCols) { s in
            var k0 = 0
            while k0 < cols {
                let k = min(panel, cols - k0)
                dequantizeStored(k0..<(k0 + k), into: s)
                body(k0, k, s + offset, storedCols)
                k0 += k
            }
        }
    }

    /// Dequantizes stored rows `range` (whole stored rows) into `dst` ([range.count, storedCols]),
    /// split over the cores.
    func dequantizeStored(_ range: Range<Int>, into dst: UnsafeMutablePointer<Float>) {
        let src = UnsafeRawBufferPointer(start: base + range.lowerBound * rowBytes, count: range.count * rowBytes)
        // The sizes were checked when the view was made; the codec cannot fail on them.
        try! TensorCodec.dequantize(dtype, src, into: UnsafeMutableBufferPointer(start: dst, count: range.count * storedCols),
                                    parallelThreshold: Weight.panelThreshold)
    }
}

/// The per-model budget of f32 copies of stored matrices (`Weight.cachedF32`): the δ optimization of
/// an edit multiplies by the same matrices dozens of times, and a dequantized copy turns each panel walk
/// into one sgemm. All or nothing per model (`ModelWeights` marks its matrices `cacheable` only when
/// all of them fit): a small model (SmolLM2: 0.54 GB in f32) runs at f32 speed, a large one keeps its
/// RSS at the file plus scratch and pays the same dequantization per parameter everywhere.
/// WILKE_F32_CACHE_MIB sets it (default 1024; 0 turns the copies off).
enum F32Cache {
    static let budget: Int = {
        let mib = ProcessInfo.processInfo.environment["WILKE_F32_CACHE_MIB"].flatMap(Int.init) ?? 1024
        return max(0, mib) << 20
    }()
}

/// Reusable f32 scratch buffers for the panel kernels: each call borrows one and returns it, so every
/// thread that multiplies has its own and none is allocated (and page-faulted) per call. A few are kept.
enum Scratch {
    private static let pool = Mutex<[FloatBuffer]>([])

    /// - count: floats needed; 0 lends no buffer (a pointer that must not be read or written), so an
    ///   unused second panel does not hold a pooled 64 MiB one.
    static func with<T>(count: Int, _ body: (UnsafeMutablePointer<Float>) throws -> T) rethrows -> T {
        if count == 0 {
            return try withUnsafeTemporaryAllocation(of: Float.self, capacity: 1) { try body($0.baseAddress!) }
        }
        // The smallest buffer that fits: a small request must not take (and keep busy) a panel-sized one,
        // which would make the next panel-sized request allocate another.
        let buf = pool.withLock { free -> FloatBuffer in
            let fits = free.indices.filter { free[$0].count >= count }
            if let i = fits.min(by: { free[$0].count < free[$1].count }) { return free.remove(at: i) }
            return FloatBuffer(count: count)
        }
        defer { pool.withLock { free in if free.count < 8 { free.append(buf) } } }
        return try body(buf.p)
    }
}
