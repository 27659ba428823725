import Formats

/// Options of a file-level apply or revert.
public struct PatchingOptions: Sendable {
    /// Skip the safety checks: base hashes, result hashes, model identity and the provenance record.
    public var force: Bool = false
    /// Replace an existing output.
    public var overwrite: Bool = false
    /// In place: rewrite a file that has other hard links (they keep the old bytes) instead of refusing.
    public var breakHardLinks: Bool = false

    public init(force: Bool = false, overwrite: Bool = false, breakHardLinks: Bool = false) {
        self.force = force
        self.overwrite = overwrite
        self.breakHardLinks = breakHardLinks
    }
}

/// What a file-level apply or revert did.
public struct PatchingReport: Equatable, Sendable {
    /// Stored names of the rewritten tensors, in checkpoint order.
    public var tensors: [String]
    /// Tensors whose type changed (quantized → promoted float on apply, back on revert).
    public var typeChanges: [String]
    /// The checkpoint's provenance record after the operation.
    public var record: [AppliedPatch]
}

/// Applies and reverts patches on whole checkpoints (GGUF, safetensors, Hugging Face directories),
/// rewriting only the touched tensors (docs/PATCH_FORMAT.md §6.1). Every touched tensor's hash is
/// checked before anything is written (a mismatch names the tensor, expected and found hash), every
/// result hash after the arithmetic, and the output appears atomically.
public enum CheckpointPatching {
    /// Writes `ckpt` with `patches` applied in order to `output` (nil: in place, allowed only when no
    /// tensor changes type). The patch ids are appended to the checkpoint's provenance record.
    @discardableResult
    public static func apply(_ patches: [Patch], to ckpt: Checkpoint, output: String?, options: PatchingOptions = .init(),
                             progress: ((Int, Int) -> Void)? = nil) throws -> PatchingReport {
        let record = try Provenance.read(ckpt)
        if !options.force {
            for p in patches {
                try checkModel(p, ckpt)
                if record.contains(where: { $0.id == p.id }) { throw PatchError.alreadyApplied(id: p.id) }
            }
        }
        if !options.force, patches.count > 1 { _ = try PatchStack.stack(patches) }  // the hash chain across patches
        let plan = try plan(patches, ckpt, forward: true, force: options.force)
        let newRecord = record + patches.map { AppliedPatch(id: $0.id, summary: $0.summary) }
        return try execute(plan, ckpt, record: newRecord, output: output, options: options, progress: progress)
    }

    /// Writes `ckpt` with `patches` undone (the last one first), byte for byte, each step's output
    /// checked against the recorded base hash; removes the ids from the provenance record.
    @discardableResult
    public static func revert(_ patches: [Patch], from ckpt: Checkpoint, output: String?, options: PatchingOptions = .init(),
                              progress: ((Int, Int) -> Void)? = nil) throws -> PatchingReport {
        var record = try Provenance.read(ckpt)
        for p in patches.reversed() {
            if let i = record.lastIndex(where: { $0.id == p.id }) {
                record.remove(at: i)
            } else if !options.force {
                throw PatchError.notApplied(id: p.id)
            }
        }
        if !options.force {
            for p in patches { try checkModel(p, ckpt) }
            if patches.count > 1 { _ = try PatchStack.stack(patches) }
        }
        let plan = try plan(patches, ckpt, forward: false, force: options.force)
        return try execute(plan, ckpt, record: record, output: output, options: options, progress: progress)
    }

    /// The patch must be for this kind of checkpoint and architecture (a clear error before hashes).
    static func checkModel(_ p: Patch, _ ckpt: Checkpoint) throws {
        guard p.base.format == ckpt.patchFormat else {
            throw PatchError.incompatibleBase("patch \(p.id.prefix(12)) is for a \(p.base.format) checkpoint, this one is \(ckpt.patchFormat)")
        }
        if let arch = ckpt.architecture, p.base.architecture != arch {
            throw PatchError.incompatibleBase("patch \(p.id.prefix(12)) is for \(p.base.architecture), this checkpoint is \(arch)")
        }
    }

    /// Per touched tensor, the steps to run in order (reverse order for revert).
    struct Plan {
        var tensors: [(tensor: CheckpointTensor, steps: [PatchStep])]
        var forward: Bool
        var verify: Bool
    }

    static func plan(_ patches: [Patch], _ ckpt: Checkpoint, forward: Bool, force: Bool) throws -> Plan {
        let steps = patches.flatMap(\.steps)
        var order: [String] = []
        var byTensor: [String: [PatchStep]] = [:]
        for s in steps {
            if byTensor[s.tensor] == nil { order.append(s.tensor) }
            byTensor[s.tensor, default: []].append(s)
        }
        var tensors: [(CheckpointTensor, [PatchStep])] = []
        var seen: Set<String> = []
        for name in order {
            let t = try ckpt.patchTarget(name)
            guard seen.insert(t.name).inserted else {
                throw PatchError.incompatibleBase("two names in the patches refer to tensor \(t.name)")
            }
            let chain = byTensor[name]!
            let ordered = forward ? chain : chain.reversed()
            let first = ordered[0]
            // Cheap checks first (type, shape, layout), then the hash of the current bytes.
            try checkFingerprint(t, name: name, dtype: forward ? first.dtype : first.resultDType, rows: first.rows, cols: first.cols,
                                 layout: first.layout)
            if !force {
                let found = ckpt.sha256(t)
                let expected = forward ? first.baseSHA256 : first.resultSHA256
                if found != expected {
                    // Forward: the tensor already holds the chain's result, so the patch is applied.
                    if forward, found == chain.last!.resultSHA256 {
                        throw PatchError.incompatibleBase("tensor \(name) already holds this patch's result (sha256 \(found)): it is already applied")
                    }
                    throw PatchError.baseMismatch(tensor: name, expected: expected, found: found)
                }
            }
            tensors.append((t, ordered))
        }
        tensors.sort { ($0.0.fileIndex, $0.0.fileRange.lowerBound) < ($1.0.fileIndex, $1.0.fileRange.lowerBound) }
        return Plan(tensors: tensors, forward: forward, verify: !force)
    }

    static func execute(_ plan: Plan, _ ckpt: Checkpoint, record: [AppliedPatch], output: String?, options: PatchingOptions,
                        progress: ((Int, Int) -> Void)?) throws -> PatchingReport {
        var replacements: [String: TensorReplacement] = [:]
        var changes: [String] = []
        for (t, steps) in plan.tensors {
            let dtype = plan.forward ? steps.last!.resultDType : steps.last!.dtype
            if dtype != t.dtype {
                if output == nil { throw PatchError.typeChangeInPlace(tensor: t.name, from: t.dtype.name, to: dtype.name) }
                changes.append(t.name)
            }
            replacements[t.name] = TensorReplacement(dtype: dtype) {
                var x = ckpt.tensorBytes(t)
                for s in steps {
                    x = plan.forward ? try TensorDelta.apply(s, to: x, verify: plan.verify) : try TensorDelta.revert(s, from: x, verify: plan.verify)
                }
                return x.bytes
            }
        }
        try CheckpointRewriter.write(ckpt, replacements: replacements, record: record, output: output,
                                     overwrite: options.overwrite, breakHardLinks: options.breakHardLinks, progress: progress)
        return PatchingReport(tensors: plan.tensors.map(\.tensor.name), typeChanges: changes, record: record)
    }
}

/// How one patch relates to a checkpoint, tensor by tensor (`wilke verify`). The overall `state` is
/// what `apply` would do: write (clean), refuse as already applied, refuse on a hash conflict, or
/// refuse because the patch is for another model.
public struct PatchVerification: Equatable, Sendable {
    public enum State: String, Equatable, Sendable {
        /// The tensor is exactly what the patch's first step on it reads.
        case clean = "applies cleanly"
        /// The tensor is exactly what the patch's last step on it writes (or the record lists the patch).
        case applied = "already applied"
        /// Right tensor, other bytes: another patch on top, or a damaged file.
        case conflict = "conflicts"
        /// Another model: format, architecture, a missing tensor, or another type, shape or layout.
        case wrongBase = "is for another model"
    }

    public struct TensorState: Equatable, Sendable {
        public var name: String
        public var state: State
        /// What the patch expects for `clean`, and what the checkpoint holds.
        public var expectedSHA256: String
        public var foundSHA256: String?
        /// Why it conflicts (missing tensor, type, shape, hash).
        public var reason: String?
    }

    public var patchID: String
    public var tensors: [TensorState]
    /// Whether the provenance record lists the patch.
    public var recorded: Bool
    /// Why the patch as a whole does not fit (format or architecture), as `apply` would say it.
    public var problem: String?

    public var state: State {
        if problem != nil || tensors.contains(where: { $0.state == .wrongBase }) { return .wrongBase }
        if recorded || (!tensors.isEmpty && tensors.allSatisfy({ $0.state == .applied })) {
            return tensors.contains { $0.state == .conflict } ? .conflict : .applied
        }
        if tensors.allSatisfy({ $0.state == .clean }) { return .clean }
        return .conflict
    }
}

extension CheckpointPatching {
    /// Checks, without writing anything, whether `patch` applies cleanly to `ckpt`, is already applied,
    /// conflicts, or is for another model, per tensor: every check `apply` makes before writing
    /// (model, record, names, types, shapes, layouts, base hashes).
    public static func verify(_ patch: Patch, against ckpt: Checkpoint) throws -> PatchVerification {
        var problem: String?
        do { try checkModel(patch, ckpt) } catch { problem = "\(error)" }
        var byTensor: [String: [PatchStep]] = [:]
        for s in patch.steps { byTensor[s.tensor, default: []].append(s) }
        var states: [PatchVerification.TensorState] = []
        var seen: Set<String> = []
        for name in patch.touchedTensors {
            let chain = byTensor[name]!
            let first = chain[0], last = chain.last!
            var state = PatchVerification.TensorState(name: name, state: .wrongBase, expectedSHA256: first.baseSHA256, foundSHA256: nil, reason: nil)
            guard let t = ckpt.tensor(name) else {
                state.reason = "the checkpoint has no such tensor"
                states.append(state)
                continue
            }
            guard seen.insert(t.name).inserted else {
                state.reason = "two names in the patch refer to tensor \(t.name)"
                states.append(state)
                continue
            }
            let readable = Result { try checkFingerprint(t, name: name, dtype: first.dtype, rows: first.rows, cols: first.cols, layout: first.layout) }
            let written = Result { try checkFingerprint(t, name: name, dtype: last.resultDType, rows: last.rows, cols: last.cols, layout: last.layout) }
            let found = ckpt.sha256(t)
            state.foundSHA256 = found
            switch (readable, written) {
            case (.success, _) where found == first.baseSHA256: state.state = .clean
            case (_, .success) where found == last.resultSHA256: state.state = .applied
            case (.success, _), (_, .success):
                state.state = .conflict
                state.reason = "sha256 \(found), expected \(first.baseSHA256)"
            case let (.failure(e), _):
                state.reason = "\(e)"
            }
            states.append(state)
        }
        let recorded = try Provenance.read(ckpt).contains { $0.id == patch.id }
        return PatchVerification(patchID: patch.id, tensors: states, recorded: recorded, problem: problem)
    }
}
