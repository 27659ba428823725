import Formats

// Adapters against real checkpoints: which base tensor a LoRA pair adapts, its logical shape and row
// order, and the conversions patch → adapter (export) and adapter → patch (import).

extension Checkpoint {
    /// The layout of a canonical tensor in this model's GGUF form when it permutes the rows (llama
    /// Q/K), whatever form this checkpoint is in; nil when rows are stored in Hugging Face order.
    public func ggufRowPermutation(_ canonical: String) -> StorageLayout? {
        guard let hp = config else { return nil }
        let layout = TensorNames.layout(canonical: canonical, architecture: hp.architecture, isGGUF: true, rank: 2,
                                        heads: hp.nHead, kvHeads: hp.nKVHead)
        if case .permutedRows = layout { return layout }
        return nil
    }
}

public enum LoRAExport {
    /// The adapter equal to `patch` for `base`: the patch must apply cleanly to `base` when both are of
    /// the same form (hashes checked, as `verify`); for another form of the model (a GGUF patch, an HF
    /// base) each adapted tensor's logical shape is checked instead, since LoRA factors are logical.
    public static func adapter(for patch: Patch, base: Checkpoint) throws -> LoRAAdapter {
        let hp = try base.requiredConfig()
        let patchArchitecture = Architecture(name: patch.base.architecture)
        guard patchArchitecture?.family == hp.family else {
            throw PatchError.adapterMismatch("the patch is for \(patch.base.architecture), the base is \(hp.architecture.rawValue)")
        }
        let sameForm = patch.base.format == base.patchFormat
        if sameForm {
            let v = try CheckpointPatching.verify(patch, against: base)
            if let t = v.tensors.first(where: { $0.state != .clean }) {
                throw PatchError.adapterMismatch("patch \(patch.id.prefix(12)) does not apply cleanly to \(base.path): tensor \(t.name) \(t.state.rawValue)"
                                                 + (t.reason.map { " (\($0))" } ?? ""))
            }
        }
        var adapter = try LoRAAdapter(patch: patch) { name in
            if patch.base.format == "gguf" { return name }
            return patchArchitecture.flatMap { TensorNames.canonical(hf: name, architecture: $0) }
        }
        for f in adapter.factors {
            guard let t = base.tensor(f.tensor) else { throw PatchError.adapterMismatch("the base has no tensor \(f.tensor)") }
            let (rows, cols) = t.stepShape
            guard rows == f.rows, cols == f.cols else {
                throw PatchError.adapterMismatch("tensor \(f.tensor) is [\(rows), \(cols)] in the base, the patch edits [\(f.rows), \(f.cols)]")
            }
        }
        adapter.architecture = hp.architecture.rawValue
        return adapter
    }

    /// Forward residues (exact fix-ups of extracted or squashed steps) a LoRA cannot carry: the number
    /// of elements they touch, so the caller can say that the adapter is not bit-exact there.
    public static func forwardResidueElements(_ patch: Patch) -> Int { patch.steps.reduce(0) { $0 + $1.forwardResidue.count } }
}

public enum LoRAImport {
    /// The patch that adds `adapter` to `base`: per adapted tensor one step of the adapter's rank r
    /// (U = B, V = Aᵀ, scale = alpha / r), built on the base's bytes like an edit, so apply, revert,
    /// stack and diff work on it. Quantized tensors are promoted to `promoteTo`.
    /// - Parameter ggufRowOrder: B rows are in GGUF storage order (llama.cpp adapters).
    public static func patch(from adapter: LoRAAdapter, base: Checkpoint, ggufRowOrder: Bool, promoteTo: DType = .f32,
                             metadata: [String: String] = [:]) throws -> Patch {
        let hp = try base.requiredConfig()
        // llama.cpp adapters name the base's exact architecture (its row order depends on it); PEFT ones
        // only need the same block structure.
        guard ggufRowOrder ? adapter.architecture == hp.architecture.rawValue
                : Architecture(name: adapter.architecture)?.family == hp.family else {
            throw PatchError.adapterMismatch("the adapter is for \(adapter.architecture), the base is \(hp.architecture.rawValue)")
        }
        var builder = PatchBuilder(architecture: base.patchArchitecture, format: base.patchFormat, metadata: metadata)
        var seen: Set<String> = []
        for var f in adapter.factors {
            guard let t = base.tensor(f.tensor) else { throw PatchError.adapterMismatch("the base has no tensor \(f.tensor)") }
            guard seen.insert(t.name).inserted else { throw PatchError.adapterMismatch("two adapter pairs adapt tensor \(t.name)") }
            let (rows, cols) = t.stepShape
            guard t.shape.count == 2, rows == f.rows, cols == f.cols else {
                throw PatchError.adapterMismatch("tensor \(f.tensor) is [\(rows), \(cols)] in the base, the adapter expects [\(f.rows), \(f.cols)]")
            }
            if ggufRowOrder, let p = base.ggufRowPermutation(f.tensor) { f = f.rowsPermuted(p, inverse: true) }
            let scale = f.scale  // before trimming: trimming keeps alpha / r, but not always bit for bit
            f = f.trimmed()
            var v = [Float](repeating: 0, count: cols * f.rank)
            for j in 0..<cols { for k in 0..<f.rank { v[j * f.rank + k] = f.a[k * cols + j] } }
            try builder.add(tensor: t.name, layout: t.stepLayout, base: base.tensorBytes(t), u: f.b, v: v, rank: f.rank,
                            scale: scale, promoteTo: promoteTo)
        }
        return builder.build()
    }
}
