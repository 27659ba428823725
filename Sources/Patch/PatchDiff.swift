/// What differs between two patches (docs/PATCH_FORMAT.md §6.3).
public struct PatchComparison: Equatable, Sendable {
    /// Per tensor: the norms of each patch's total update ΔA = Σ_steps diag-scaled U Vᵀ, their
    /// difference and cosine. Computed from k×k Gram matrices, never from dense [rows, cols] matrices.
    public struct TensorComparison: Equatable, Sendable {
        public var name: String
        public var stepsA: Int
        public var stepsB: Int
        public var normA: Double
        public var normB: Double
        /// ‖ΔA − ΔB‖_F; nil when the logical shapes differ.
        public var differenceNorm: Double?
        /// ⟨ΔA, ΔB⟩ / (‖ΔA‖ ‖ΔB‖); nil when a side is absent or zero, or the shapes differ.
        public var cosine: Double?
    }

    /// One request of one edit record, with where the edit was made.
    public struct EditEntry: Equatable, Sendable {
        public var request: RecordedRequest
        public var method: String
        public var layer: Int
        public var tensor: String
    }

    public struct EditChange: Equatable, Sendable {
        public var before: EditEntry
        public var after: EditEntry
    }

    /// Same subject and prompt, different new targets (within or across the patches).
    public struct FactConflict: Equatable, Sendable {
        public var subject: String
        public var prompt: String
        public var targetsA: [String]
        public var targetsB: [String]
    }

    public var sameArchitecture: Bool
    /// Tensors both patches touch whose base SHA-256 differs: the patches are for different models.
    public var baseMismatches: [String]
    public var tensors: [TensorComparison]
    public var editsAdded: [EditEntry]
    public var editsRemoved: [EditEntry]
    public var editsChanged: [EditChange]
    public var conflicts: [FactConflict]
}

public enum PatchDiff {
    public static func compare(_ a: Patch, _ b: Patch) -> PatchComparison {
        let baseA = Dictionary(a.base.tensors.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        let baseB = Dictionary(b.base.tensors.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        let mismatches = baseA.keys.filter { baseB[$0] != nil && baseB[$0]!.sha256 != baseA[$0]!.sha256 }.sorted()
        let names = Set(a.steps.map(\.tensor)).union(b.steps.map(\.tensor)).sorted()
        let tensors = names.map { name in compareTensor(name, a.steps.filter { $0.tensor == name }, b.steps.filter { $0.tensor == name }) }

        let ea = entries(a), eb = entries(b)
        func key(_ e: PatchComparison.EditEntry) -> String { e.request.subject + "\u{0}" + e.request.prompt }
        let byKeyA = Dictionary(grouping: ea, by: key), byKeyB = Dictionary(grouping: eb, by: key)
        var added: [PatchComparison.EditEntry] = [], removed: [PatchComparison.EditEntry] = []
        var changed: [PatchComparison.EditChange] = [], conflicts: [PatchComparison.FactConflict] = []
        for k in Set(byKeyA.keys).union(byKeyB.keys).sorted() {
            let xs = byKeyA[k] ?? [], ys = byKeyB[k] ?? []
            let ta = Array(Set(xs.map(\.request.targetNew))).sorted(), tb = Array(Set(ys.map(\.request.targetNew))).sorted()
            if Set(ta).union(tb).count > 1 {
                let r = (xs.first ?? ys[0]).request
                conflicts.append(.init(subject: r.subject, prompt: r.prompt, targetsA: ta, targetsB: tb))
            }
            if xs.isEmpty { added += ys; continue }
            if ys.isEmpty { removed += xs; continue }
            // Same fact in both: entries that are not identical pair up as changes; extras are added/removed.
            let onlyA = xs.filter { !ys.contains($0) }, onlyB = ys.filter { !xs.contains($0) }
            for (x, y) in zip(onlyA, onlyB) { changed.append(.init(before: x, after: y)) }
            removed += onlyA.dropFirst(onlyB.count)
            added += onlyB.dropFirst(onlyA.count)
        }
        return PatchComparison(sameArchitecture: a.base.architecture == b.base.architecture && a.base.format == b.base.format,
                               baseMismatches: mismatches, tensors: tensors, editsAdded: added, editsRemoved: removed,
                               editsChanged: changed, conflicts: conflicts)
    }

    private static func entries(_ p: Patch) -> [PatchComparison.EditEntry] {
        p.steps.flatMap { s in
            s.edits.flatMap { e in e.requests.map { PatchComparison.EditEntry(request: $0, method: e.method, layer: e.layer, tensor: s.tensor) } }
        }
    }

    /// Norms from Gram matrices: ⟨XYᵀ, ZWᵀ⟩_F = Σ_pq (XᵀZ)_pq (YᵀW)_pq, in f64.
    static func compareTensor(_ name: String, _ sa: [PatchStep], _ sb: [PatchStep]) -> PatchComparison.TensorComparison {
        let fa = Factors(sa), fb = Factors(sb)
        let na = fa.map { inner($0, $0).squareRoot() } ?? 0, nb = fb.map { inner($0, $0).squareRoot() } ?? 0
        var diff: Double?, cosine: Double?
        switch (fa, fb) {
        case let (x?, y?):
            if x.rows == y.rows, x.cols == y.cols {
                let ab = inner(x, y)
                diff = max(0, na * na + nb * nb - 2 * ab).squareRoot()
                if na > 0, nb > 0 { cosine = ab / (na * nb) }
            }
        case (nil, _?): diff = nb
        case (_?, nil): diff = na
        case (nil, nil): diff = 0
        }
        return .init(name: name, stepsA: sa.count, stepsB: sb.count, normA: na, normB: nb, differenceNorm: diff, cosine: cosine)
    }

    /// All steps' columns side by side: u = scaled U [rows, k], v = V [cols, k], row-major f64.
    struct Factors {
        var rows: Int, cols: Int, rank: Int
        var u: [Double], v: [Double]

        init?(_ steps: [PatchStep]) {
            guard let first = steps.first, steps.allSatisfy({ $0.rows == first.rows && $0.cols == first.cols }) else { return nil }
            rows = first.rows
            cols = first.cols
            rank = steps.reduce(0) { $0 + $1.rank }
            u = [Double](repeating: 0, count: rows * rank)
            v = [Double](repeating: 0, count: cols * rank)
            var c = 0
            for s in steps {
                for i in 0..<rows { for t in 0..<s.rank { u[i * rank + c + t] = Double(s.u[i * s.rank + t] * s.scale) } }
                for j in 0..<cols { for t in 0..<s.rank { v[j * rank + c + t] = Double(s.v[j * s.rank + t]) } }
                c += s.rank
            }
        }
    }

    static func inner(_ x: Factors, _ y: Factors) -> Double {
        func gram(_ p: [Double], _ q: [Double], n: Int, kp: Int, kq: Int) -> [Double] {
            var g = [Double](repeating: 0, count: kp * kq)
            for i in 0..<n { for a in 0..<kp { let pa = p[i * kp + a]; for b in 0..<kq { g[a * kq + b] += pa * q[i * kq + b] } } }
            return g
        }
        let gu = gram(x.u, y.u, n: x.rows, kp: x.rank, kq: y.rank)
        let gv = gram(x.v, y.v, n: x.cols, kp: x.rank, kq: y.rank)
        return zip(gu, gv).reduce(0) { $0 + $1.0 * $1.1 }
    }
}
