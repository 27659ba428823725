import Formats

/// How far a tensor of the target base is from the source base it replaces (`wilke rebase`).
public struct BaseComparison: Equatable, Sendable {
    public var tensor: String
    /// max |W_target − W_source| over the logical elements (dequantized, f64).
    public var maxDifference: Double
    /// The largest ratio |W_target − W_source| / tolerance over the elements (≤ 1: same weights).
    public var worstRatio: Double
}

/// Re-targets a patch to another form of the same model (GGUF ↔ Hugging Face directory, any float
/// dtype, or the same model with another promotion type): the steps' logical factors, scales and edit
/// records are rebuilt on the new base's bytes, so hashes, layouts, residues and promotion are the new
/// base's. Forward residues (exact fix-ups of the old bytes) do not carry over and are dropped.
///
/// The new base must hold the same weights: each element may differ from the source by at most the
/// sum of the two bases' rounding, where a float element's rounding is half an ulp of its type at its
/// value, and a block-quantized element's is half the quantization step of its block, estimated as
/// (max − min) / (2^bits − 1) / 2 of the block's dequantized values.
public enum PatchRebase {
    public static func rebase(_ patch: Patch, from source: Checkpoint, onto target: Checkpoint, promoteTo: DType? = nil)
        throws -> (patch: Patch, comparisons: [BaseComparison], droppedForwardResidues: Int) {
        let hs = try source.requiredConfig(), ht = try target.requiredConfig()
        guard hs.family == ht.family, hs.nLayer == ht.nLayer, hs.dModel == ht.dModel else {
            throw PatchError.incompatibleBase("the source is \(hs.architecture.rawValue) (\(hs.nLayer) layers, d \(hs.dModel)), the target \(ht.architecture.rawValue) (\(ht.nLayer) layers, d \(ht.dModel))")
        }
        let v = try CheckpointPatching.verify(patch, against: source)
        if let t = v.tensors.first(where: { $0.state != .clean }) {
            throw PatchError.incompatibleBase("patch \(patch.id.prefix(12)) does not apply cleanly to \(source.path): tensor \(t.name) \(t.state.rawValue)")
        }
        var pairs: [String: (CheckpointTensor, CheckpointTensor)] = [:]
        var comparisons: [BaseComparison] = []
        for name in patch.touchedTensors {
            let ts = try source.patchTarget(name)
            guard let tt = target.tensor(ts.canonicalName ?? name) else { throw PatchError.missingTensor(ts.canonicalName ?? name) }
            guard ts.stepShape == tt.stepShape else {
                throw PatchError.shapeMismatch(tensor: tt.name, expected: "\(ts.stepShape)", found: "\(tt.stepShape)")
            }
            let c = try compare(source, ts, target, tt)
            guard c.worstRatio <= 1 else {
                throw PatchError.incompatibleBase(String(format: "tensor %@ differs from the source's by up to %.3g, %.1f× the two bases' rounding: not the same weights",
                                                         tt.name, c.maxDifference, c.worstRatio))
            }
            comparisons.append(c)
            pairs[name] = (ts, tt)
        }
        var builder = PatchBuilder(architecture: target.patchArchitecture, format: target.patchFormat,
                                   metadata: patch.metadata.merging(["rebased_from": patch.id]) { $1 })
        var dropped = 0
        for (n, s) in patch.steps.enumerated() {
            guard s.rank > 0 else {
                throw PatchError.notExtractable(tensor: s.tensor, reason: "step \(n) is rank 0 (its change is carried by residues of the old bytes)")
            }
            dropped += s.forwardResidue.count
            let (_, tt) = pairs[s.tensor]!
            try builder.add(tensor: tt.name, layout: tt.stepLayout, base: target.tensorBytes(tt), u: s.u, v: s.v, rank: s.rank,
                            scale: s.scale, promoteTo: promoteTo ?? s.resultDType, edits: s.edits)
        }
        return (builder.build(), comparisons, dropped)
    }

    /// Element-wise comparison of two forms of one weight, in logical order.
    static func compare(_ a: Checkpoint, _ ta: CheckpointTensor, _ b: Checkpoint, _ tb: CheckpointTensor) throws -> BaseComparison {
        let (sa, sb) = (try a.floats(ta), try b.floats(tb))
        let wa = ta.layout.logical(sa, shape: ta.shape), wb = tb.layout.logical(sb, shape: tb.shape)
        let ea = ta.layout.logical(rounding(sa, ta.dtype), shape: ta.shape), eb = tb.layout.logical(rounding(sb, tb.dtype), shape: tb.shape)
        var worst = 0.0, ratio = 0.0
        for i in wa.indices {
            let d = abs(Double(wa[i]) - Double(wb[i]))
            worst = max(worst, d)
            // A floor of one f32 ulp at the value keeps exact zeros of both sides from dividing by 0.
            let tol = Double(ea[i]) + Double(eb[i]) + Double(max(abs(wa[i]), abs(wb[i])).ulp)
            ratio = max(ratio, d / tol)
        }
        return BaseComparison(tensor: tb.name, maxDifference: worst, worstRatio: ratio)
    }

    /// Per element (storage order), half the rounding step of its stored type at its value.
    static func rounding(_ x: [Float], _ dtype: DType) -> [Float] {
        switch dtype {
        case .f32: return x.map { $0.ulp / 2 }
        case .f16: return x.map { Float(Float16($0).ulp) / 2 }
        case .bf16: return x.map { Float(bitPattern: ($0.magnitude.bitPattern & 0x7F80_0000)) * 0x1p-8 }  // half of 2^(e−7)
        default:
            let n = dtype.blockSize, levels = Float((1 << bits(dtype)) - 1)
            var out = [Float](repeating: 0, count: x.count)
            for start in stride(from: 0, to: x.count, by: n) {
                let block = x[start..<min(x.count, start + n)]
                let step = ((block.max() ?? 0) - (block.min() ?? 0)) / levels / 2
                for i in block.indices { out[i] = step }
            }
            return out
        }
    }

    static func bits(_ t: DType) -> Int {
        switch t {
        case .q2_K: return 2
        case .q3_K: return 3
        case .q5_0, .q5_1, .q5_K: return 5
        case .q6_K: return 6
        case .q8_0, .q8_1, .q8_K: return 8
        default: return 4
        }
    }
}
