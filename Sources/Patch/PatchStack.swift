import Formats

/// Stacking and squashing (docs/PATCH_FORMAT.md §6).
public enum PatchStack {
    /// One patch whose application equals applying `patches` in order: the steps concatenated, the base
    /// fingerprint of each tensor taken from the first patch that touches it, metadata merged (later
    /// patches win on equal keys). Throws unless the patches share architecture and format and every
    /// step's base hash is the previous result hash on its tensor.
    public static func stack(_ patches: [Patch]) throws -> Patch {
        guard let first = patches.first else { throw PatchError.invalidManifest("nothing to stack") }
        var fingerprints: [String: TensorFingerprint] = [:]
        var steps: [PatchStep] = []
        var metadata: [String: String] = [:]
        for (n, p) in patches.enumerated() {
            guard p.base.architecture == first.base.architecture, p.base.format == first.base.format else {
                throw PatchError.incompatibleBase("patch \(n) is for \(p.base.architecture)/\(p.base.format), " +
                                                  "patch 0 for \(first.base.architecture)/\(first.base.format)")
            }
            for t in p.base.tensors where fingerprints[t.name] == nil { fingerprints[t.name] = t }
            steps += p.steps
            metadata.merge(p.metadata) { _, new in new }
        }
        let out = Patch(base: BaseFingerprint(architecture: first.base.architecture, format: first.base.format,
                                              tensors: fingerprints.values.sorted { $0.name < $1.name }),
                        steps: steps, metadata: metadata)
        try out.validate()
        return out
    }

    /// Merges all steps on each tensor (or only on `tensors`, if given) into one step of rank Σk, at
    /// the position of the tensor's first step (steps on different tensors commute). The merged step
    /// runs one fma chain over all factor columns, rounding once; where that differs from sequential
    /// application (F16 / BF16 / promoted tensors) a forward residue restores the sequential bytes, so
    /// the result hash is unchanged. Its revert residue is computed from the base.
    /// - Parameter bases: the base bytes of every tensor that has more than one step.
    public static func squash(_ patch: Patch, bases: [String: TensorBytes], tensors: Set<String>? = nil) throws -> Patch {
        try patch.validate()
        var groups: [String: [PatchStep]] = [:]
        for s in patch.steps where tensors?.contains(s.tensor) ?? true { groups[s.tensor, default: []].append(s) }
        var out: [PatchStep] = []
        var done: Set<String> = []
        for s in patch.steps {
            guard let group = groups[s.tensor], group.count > 1 else { out.append(s); continue }
            if done.contains(s.tensor) { continue }
            done.insert(s.tensor)
            guard let base = bases[s.tensor] else { throw PatchError.tensorNotFound(s.tensor) }
            guard base.sha256 == group[0].baseSHA256 else {
                throw PatchError.baseMismatch(tensor: s.tensor, expected: group[0].baseSHA256, found: base.sha256)
            }
            out.append(try merge(group, base: base))
        }
        let squashed = Patch(base: patch.base, steps: out, metadata: patch.metadata)
        try squashed.validate()
        return squashed
    }

    /// One step with the columns of every step's scaled U (Float(U*scale), exactly what each step's
    /// chain used) and V, side by side, scale 1. Its target is the bytes sequential application gives
    /// (a forward residue fixes the elements where one rounding differs from several), so a squashed
    /// patch applies to exactly the same bytes and hash as the steps it replaces.
    static func merge(_ group: [PatchStep], base: TensorBytes) throws -> PatchStep {
        var sequential = base
        for s in group { sequential = try TensorDelta.apply(s, to: sequential) }
        let rank = group.reduce(0) { $0 + $1.rank }
        guard rank <= 4096 else { throw PatchError.invalidFactors("squashed rank \(rank) exceeds 4096") }
        let first = group[0]
        var u = [Float](repeating: 0, count: first.rows * rank)
        var v = [Float](repeating: 0, count: first.cols * rank)
        var col = 0
        for s in group {
            for i in 0..<s.rows { for t in 0..<s.rank { u[i * rank + col + t] = s.u[i * s.rank + t] * s.scale } }
            for j in 0..<s.cols { for t in 0..<s.rank { v[j * rank + col + t] = s.v[j * s.rank + t] } }
            col += s.rank
        }
        return try TensorDelta.makeStep(tensor: first.tensor, layout: first.layout, base: base, u: u, v: v, rank: rank, scale: 1,
                                        promoteTo: group.last!.resultDType, edits: group.flatMap(\.edits),
                                        target: sequential).step
    }
}
