import Formats

// A LoRA adapter as runtimes load it next to an unchanged base model: per weight W [out, in], factors
// B [out, r] and A [r, in] with W' = W + (alpha / r) · B A. A rank-k patch step W += (scale·U) Vᵀ is
// exactly such a pair (B = scale·U, A = Vᵀ), and the steps on one tensor concatenate into one pair of
// rank Σk, so the export is exact in f32 (docs/LORA.md).

/// The LoRA factors of one weight, in logical (Hugging Face) row order.
public struct LoRAFactors: Equatable, Sendable {
    /// Canonical (GGUF-style) name of the weight, e.g. `blk.5.ffn_down.weight`.
    public var tensor: String
    /// Logical shape of the weight W [rows = out, cols = in].
    public var rows: Int
    public var cols: Int
    public var rank: Int
    /// [rows, rank] row-major f32: B[i*rank + t].
    public var b: [Float]
    /// [rank, cols] row-major f32: A[t*cols + j].
    public var a: [Float]
    /// The runtime multiplies B A by alpha / rank (nil: 1, llama.cpp's rule for a missing alpha).
    public var alpha: Float?

    public init(tensor: String, rows: Int, cols: Int, rank: Int, b: [Float], a: [Float], alpha: Float?) {
        precondition(b.count == rows * rank && a.count == rank * cols, "LoRA factors do not match [\(rows), \(cols)] at rank \(rank)")
        self.tensor = tensor
        self.rows = rows
        self.cols = cols
        self.rank = rank
        self.b = b
        self.a = a
        self.alpha = alpha
    }

    /// alpha / rank, the factor a runtime applies to B A.
    public var scale: Float { alpha.map { $0 / Float(rank) } ?? 1 }

    /// The same update at a higher rank, padded with zero columns of B and zero rows of A (which add
    /// nothing), and alpha set to the new rank so the scale stays 1 when it was 1. llama.cpp has one
    /// alpha per file, so every pair of a file must have the same rank for the scale to be exact.
    func padded(to r: Int) -> LoRAFactors {
        guard r > rank else { return self }
        var nb = [Float](repeating: 0, count: rows * r)
        for i in 0..<rows { for t in 0..<rank { nb[i * r + t] = b[i * rank + t] } }
        var na = a
        na.append(contentsOf: repeatElement(0, count: (r - rank) * cols))
        return LoRAFactors(tensor: tensor, rows: rows, cols: cols, rank: r, b: nb, a: na, alpha: alpha.map { $0 * Float(r) / Float(rank) })
    }

    /// Drops trailing rank components whose B column and A row are both zero (an exporter's padding).
    func trimmed() -> LoRAFactors {
        var r = rank
        while r > 1, (0..<rows).allSatisfy({ b[$0 * rank + r - 1] == 0 }), (0..<cols).allSatisfy({ a[(r - 1) * cols + $0] == 0 }) { r -= 1 }
        guard r < rank else { return self }
        var nb = [Float](repeating: 0, count: rows * r)
        for i in 0..<rows { for t in 0..<r { nb[i * r + t] = b[i * rank + t] } }
        return LoRAFactors(tensor: tensor, rows: rows, cols: cols, rank: r, b: nb, a: Array(a[0..<(r * cols)]),
                           alpha: alpha.map { $0 * Float(r) / Float(rank) })
    }

    /// B with its rows reordered by `layout`'s row permutation (logical row i goes to storage row
    /// p(i)), or back.
    func rowsPermuted(_ layout: StorageLayout, inverse: Bool) -> LoRAFactors {
        var out = self
        for i in 0..<rows {
            let s = layout.storageRow(i, rows: rows)
            let (from, to) = inverse ? (s, i) : (i, s)
            for t in 0..<rank { out.b[to * rank + t] = b[from * rank + t] }
        }
        return out
    }
}

/// A whole adapter: the base architecture it is for and one factor pair per adapted weight.
public struct LoRAAdapter: Equatable, Sendable {
    /// The base model's architecture (GGUF `general.architecture`, or the Hugging Face family).
    public var architecture: String
    public var factors: [LoRAFactors]
    /// Free-form provenance: the patch id it came from, the base it was made for.
    public var metadata: [String: String]

    public init(architecture: String, factors: [LoRAFactors], metadata: [String: String] = [:]) {
        self.architecture = architecture
        self.factors = factors
        self.metadata = metadata
    }

    public var maxRank: Int { factors.map(\.rank).max() ?? 0 }
}

extension LoRAAdapter {
    /// The adapter equal to `patch`: per tensor (in order of first appearance), B = [scale₁·U₁ | scale₂·U₂
    /// | …] and A = [V₁ | V₂ | …]ᵀ in the patch's step order, alpha = rank (scale 1). The products
    /// scale·U are the values the patch's own arithmetic uses (docs/PATCH_FORMAT.md §4.1).
    /// - Parameter canonicalName: maps a step's tensor name to its canonical GGUF name.
    /// - Throws: `notExportable` for a rank-0 step (its change lives in residues only).
    public init(patch: Patch, canonicalName: (String) -> String?) throws {
        var order: [String] = []
        var byTensor: [String: [PatchStep]] = [:]
        for s in patch.steps {
            if byTensor[s.tensor] == nil { order.append(s.tensor) }
            byTensor[s.tensor, default: []].append(s)
        }
        var factors: [LoRAFactors] = []
        for name in order {
            let steps = byTensor[name]!
            if let s = steps.first(where: { $0.rank == 0 }) {
                throw PatchError.notExportable(tensor: s.tensor, reason: "a rank-0 step carries its change in residues only, which have no LoRA form")
            }
            guard let canonical = canonicalName(name) else {
                throw PatchError.notExportable(tensor: name, reason: "it has no counterpart in the other naming scheme")
            }
            let rows = steps[0].rows, cols = steps[0].cols, r = steps.reduce(0) { $0 + $1.rank }
            var b = [Float](repeating: 0, count: rows * r), a = [Float](repeating: 0, count: r * cols)
            var t0 = 0
            for s in steps {
                for i in 0..<rows { for t in 0..<s.rank { b[i * r + t0 + t] = s.u[i * s.rank + t] * s.scale } }
                for j in 0..<cols { for t in 0..<s.rank { a[(t0 + t) * cols + j] = s.v[j * s.rank + t] } }
                t0 += s.rank
            }
            factors.append(LoRAFactors(tensor: canonical, rows: rows, cols: cols, rank: r, b: b, a: a, alpha: Float(r)))
        }
        self.init(architecture: patch.base.architecture, factors: factors, metadata: ["wilke.patch": patch.id])
    }

    /// The adapter with its factors rounded to `dtype` (f32, f16 or bf16) and back, as a runtime reads
    /// them; and the largest |ΔW| error that rounding introduces in any element of B A.
    public func rounded(to dtype: DType) -> (adapter: LoRAAdapter, maxDeltaError: Double) {
        guard dtype != .f32 else { return (self, 0) }
        var out = self, worst = 0.0
        for (n, f) in factors.enumerated() {
            var g = f
            g.b = ElementCodec.roundTrip(f.b, dtype)
            g.a = ElementCodec.roundTrip(f.a, dtype)
            for i in 0..<f.rows {
                for j in 0..<f.cols {
                    var exact = 0.0, got = 0.0
                    for t in 0..<f.rank {
                        exact += Double(f.b[i * f.rank + t]) * Double(f.a[t * f.cols + j])
                        got += Double(g.b[i * f.rank + t]) * Double(g.a[t * f.cols + j])
                    }
                    worst = max(worst, abs(exact - got) * Double(f.scale))
                }
            }
            out.factors[n] = g
        }
        return (out, worst)
    }
}

extension ElementCodec {
    /// `xs` rounded to a float type and widened back to f32.
    static func roundTrip(_ xs: [Float], _ dtype: DType) -> [Float] {
        (try? decode(TensorBytes(dtype: dtype, rows: 1, cols: xs.count, bytes: encode(xs, as: dtype)))) ?? xs
    }
}
