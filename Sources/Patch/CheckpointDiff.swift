import Formats

/// What differs between two checkpoints, tensor by tensor.
public struct CheckpointComparison: Equatable, Sendable {
    public struct TensorDifference: Equatable, Sendable {
        public var name: String
        public var dtypeA: String
        public var dtypeB: String
        public var shapeA: [Int]
        public var shapeB: [Int]
        /// The numbers below are nil when the shapes differ.
        public var changedElements: Int?
        public var maxAbs: Double?
        /// ‖B − A‖_F / ‖A‖_F (inf when A is zero and B is not).
        public var relativeFrobenius: Double?
        /// Numerical rank of B − A (singular values above 1% of the largest) as far as a sketch of
        /// `rankSketch` probes sees; `rankIsLowerBound` when every probe found signal.
        public var rank: Int?
        public var rankIsLowerBound: Bool
    }

    public var changed: [TensorDifference]
    public var unchanged: Int
    public var onlyInA: [String]
    public var onlyInB: [String]
}

/// Compares checkpoints and extracts the patch that turns one into the other.
public enum CheckpointDiff {
    /// Per tensor (matched by stored name): identical bytes count as unchanged; otherwise both sides
    /// are decoded to f32 (one tensor at a time) for max |Δ|, relative Frobenius norm and rank.
    public static func compare(_ a: Checkpoint, _ b: Checkpoint, rankSketch: Int = 16,
                               progress: ((Int, Int) -> Void)? = nil) throws -> CheckpointComparison {
        var changed: [CheckpointComparison.TensorDifference] = []
        var unchanged = 0
        let namesB = Set(b.tensors.map(\.name))
        for (n, ta) in a.tensors.enumerated() {
            progress?(n, a.tensors.count)
            guard namesB.contains(ta.name), let tb = b.tensor(ta.name) else { continue }
            if ta.dtype == tb.dtype, ta.shape == tb.shape, a.data(ta).elementsEqual(b.data(tb)) { unchanged += 1; continue }
            var d = CheckpointComparison.TensorDifference(name: ta.name, dtypeA: ta.dtype.name, dtypeB: tb.dtype.name, shapeA: ta.shape,
                                                          shapeB: tb.shape, rankIsLowerBound: false)
            if ta.shape == tb.shape, ElementCodec.canRead(ta.dtype), ElementCodec.canRead(tb.dtype) {
                let x = try ElementCodec.decode(a.tensorBytes(ta)), y = try ElementCodec.decode(b.tensorBytes(tb))
                var delta = [Float](repeating: 0, count: x.count)
                var maxAbs = 0.0, sumD = 0.0, sumA = 0.0, count = 0
                for e in x.indices {
                    let xe = Double(x[e]), ye = Double(y[e])
                    if x[e].bitPattern != y[e].bitPattern { count += 1 }
                    let de = ye - xe
                    guard de.isFinite else { continue }
                    delta[e] = Float(de)
                    maxAbs = max(maxAbs, abs(de))
                    sumD += de * de
                    if xe.isFinite { sumA += xe * xe }
                }
                d.changedElements = count
                d.maxAbs = maxAbs
                d.relativeFrobenius = sumA > 0 ? (sumD / sumA).squareRoot() : (sumD > 0 ? .infinity : 0)
                let (r, c) = storageShape(ta)
                if sumD > 0 {
                    let approx = LowRankApproximation(delta, rows: r, cols: c, sketch: rankSketch)
                    d.rank = approx.numericalRank()
                    d.rankIsLowerBound = d.rank == approx.rank && approx.rank < min(r, c)
                } else {
                    d.rank = 0
                }
            }
            changed.append(d)
        }
        let namesA = Set(a.tensors.map(\.name))
        return CheckpointComparison(changed: changed, unchanged: unchanged,
                                    onlyInA: a.tensors.map(\.name).filter { !namesB.contains($0) },
                                    onlyInB: b.tensors.map(\.name).filter { !namesA.contains($0) })
    }

    /// The patch that turns `a` into `b`, tensor for tensor, byte-exact on apply and on revert. For
    /// each changed tensor the difference is approximated by a truncated SVD (rank ≤ `maxRank`,
    /// chosen from the singular values) and the step's forward residue fixes every element the
    /// rounding misses; when that costs more than storing the change outright (the difference is not
    /// low rank), the step has rank 0 and the forward residue carries the whole change.
    /// - Throws: `notExtractable` when tensors are added, removed or reshaped, or when a tensor's new
    ///   type is not one a step writes (a float type; quantized only as the promotion of a block type).
    public static func extract(from a: Checkpoint, to b: Checkpoint, maxRank: Int = 16, metadata: [String: String] = [:],
                               progress: ((Int, Int) -> Void)? = nil) throws -> Patch {
        let namesB = Set(b.tensors.map(\.name)), namesA = Set(a.tensors.map(\.name))
        if let extra = b.tensors.first(where: { !namesA.contains($0.name) }) {
            throw PatchError.notExtractable(tensor: extra.name, reason: "it exists only in the second checkpoint")
        }
        if let missing = a.tensors.first(where: { !namesB.contains($0.name) }) {
            throw PatchError.notExtractable(tensor: missing.name, reason: "it exists only in the first checkpoint")
        }
        var fingerprints: [TensorFingerprint] = []
        var steps: [PatchStep] = []
        for (n, ta) in a.tensors.enumerated() {
            progress?(n, a.tensors.count)
            let tb = b.tensor(ta.name)!
            if ta.dtype == tb.dtype, ta.shape == tb.shape, a.data(ta).elementsEqual(b.data(tb)) { continue }
            guard ta.shape == tb.shape else {
                throw PatchError.notExtractable(tensor: ta.name, reason: "its shape changes from \(ta.shape) to \(tb.shape)")
            }
            let base = a.tensorBytes(ta)
            var target = b.tensorBytes(tb)
            target.rows = base.rows
            target.cols = base.cols
            let step = try extractStep(ta.name, layout: ta.stepLayout, base: base, target: target, maxRank: maxRank)
            fingerprints.append(TensorFingerprint(name: ta.name, dtype: base.dtype, rows: base.rows, cols: base.cols,
                                                  layout: ta.stepLayout, sha256: base.sha256))
            steps.append(step)
        }
        progress?(a.tensors.count, a.tensors.count)
        var meta = metadata
        if meta["tool"] == nil { meta["tool"] = "wilke diff" }
        let patch = Patch(base: BaseFingerprint(architecture: a.patchArchitecture, format: a.patchFormat,
                                                tensors: fingerprints.sorted { $0.name < $1.name }),
                          steps: steps, metadata: meta)
        try patch.validate()
        return patch
    }

    /// One step from `base` to exactly `target` ([rows, cols] logical, same layout).
    static func extractStep(_ name: String, layout: StorageLayout, base: TensorBytes, target: TensorBytes, maxRank: Int) throws -> PatchStep {
        guard ElementCodec.floatTypes.contains(target.dtype) else {
            throw PatchError.notExtractable(tensor: name, reason: "its new type \(target.dtype.name) is not F32, F16 or BF16")
        }
        if ElementCodec.floatTypes.contains(base.dtype), base.dtype != target.dtype {
            throw PatchError.notExtractable(tensor: name, reason: "its type changes from \(base.dtype.name) to \(target.dtype.name)")
        }
        guard ElementCodec.canRead(base.dtype) else { throw PatchError.notExtractable(tensor: name, reason: "type \(base.dtype.name) cannot be read") }
        let dense = try TensorDelta.makeStep(tensor: name, layout: layout, base: base, u: [], v: [], rank: 0, target: target).step
        guard maxRank > 0, base.rows > 1, base.cols > 1 else { return dense }

        let x = try ElementCodec.decode(base), y = try ElementCodec.decode(target)
        var delta = [Float](repeating: 0, count: x.count)
        for e in x.indices {
            let d = y[e] - x[e]
            delta[e] = d.isFinite ? d : 0
        }
        let (sr, sc) = layout.isTransposed ? (base.cols, base.rows) : (base.rows, base.cols)
        let approx = LowRankApproximation(delta, rows: sr, cols: sc, sketch: maxRank + 8)
        let k = min(maxRank, approx.numericalRank())
        guard k > 0 else { return dense }
        // Storage factors → logical U [rows, k] (scaled by σ) and V [cols, k].
        let l = approx.rank
        var u = [Float](repeating: 0, count: base.rows * k), v = [Float](repeating: 0, count: base.cols * k)
        for i in 0..<base.rows {
            let p = layout.storageRow(i, rows: base.rows)
            for t in 0..<k {
                let s = approx.sigma[t]
                u[i * k + t] = Float(layout.isTransposed ? approx.right[p * l + t] * s : approx.left[p * l + t] * s)
            }
        }
        for j in 0..<base.cols {
            for t in 0..<k { v[j * k + t] = Float(layout.isTransposed ? approx.left[j * l + t] : approx.right[j * l + t]) }
        }
        let lowRank = try TensorDelta.makeStep(tensor: name, layout: layout, base: base, u: u, v: v, rank: k, target: target).step
        return lowRank.storedBytes < dense.storedBytes ? lowRank : dense
    }

    /// [rows, cols] of the tensor's storage matrix.
    static func storageShape(_ t: CheckpointTensor) -> (Int, Int) {
        let (r, c) = t.stepShape
        return t.stepLayout.isTransposed ? (c, r) : (r, c)
    }
}

extension PatchStep {
    /// Bytes the step takes in the binary area before compression: factors and both residues.
    public var storedBytes: Int { (u.count + v.count) * 4 + residue.bytes.count + forwardResidue.bytes.count }
}
