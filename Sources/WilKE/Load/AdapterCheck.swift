import Foundation
import Formats
import Patch

/// A `WeightSource` that serves a checkpoint with LoRA factors merged in f32, W + (alpha / r) · B A,
/// each element by the same fma chain as a patch step (docs/PATCH_FORMAT.md §4.1) but without the
/// patch's forward residue: what an adapter carries, seen by wilke's engine.
public struct AdaptedWeights: WeightSource {
    public let base: CheckpointWeights
    /// Per canonical tensor name, its factors (logical, HF row order).
    private let factors: [String: LoRAFactors]

    public init(_ checkpoint: Checkpoint, adapter: LoRAAdapter) throws {
        base = CheckpointWeights(checkpoint)
        var byName: [String: LoRAFactors] = [:]
        for f in adapter.factors {
            guard let t = checkpoint.tensor(f.tensor), t.logicalShape == [f.rows, f.cols] else { throw WilKEError.missingTensor(f.tensor) }
            byName[t.canonicalName ?? t.name] = f
        }
        factors = byName
    }

    public func has(_ name: String) -> Bool { base.has(name) }

    public func tensor(_ name: String) throws -> (shape: [Int], values: [Float]) {
        var (shape, w) = try base.tensor(name)
        guard let f = factors[name] ?? base.checkpoint.tensor(name).flatMap({ t in t.canonicalName.flatMap { factors[$0] } }) else {
            return (shape, w)
        }
        let r = f.rank, scale = f.scale
        for i in 0..<f.rows {
            for j in 0..<f.cols {
                var acc = w[i * f.cols + j]
                for t in 0..<r { acc = acc.addingProduct(f.b[i * r + t] * scale, f.a[t * f.cols + j]) }
                w[i * f.cols + j] = acc
            }
        }
        return (shape, w)
    }
}

/// How closely an adapter reproduces its patch, measured with wilke's engine.
public enum AdapterCheck {
    public struct Result: Sendable {
        /// Largest |logit(base + adapter) − logit(base + patch)| over the vocabulary at every position
        /// of every prompt.
        public var maxLogitDifference: Float
        public var prompts: Int
    }

    /// The edit prompts of `patch` (subject filled in), deduplicated, at most `limit`.
    public static func prompts(of patch: Patch, limit: Int = 16) -> [String] {
        var seen: Set<String> = [], out: [String] = []
        for s in patch.steps { for e in s.edits { for r in e.requests {
            let p = r.prompt.replacingOccurrences(of: "{}", with: r.subject)
            if out.count < limit, seen.insert(p).inserted { out.append(p) }
        } } }
        return out
    }

    /// Runs `base` with `patch` applied (in memory) and `base` with `adapter` merged on `prompts`, and
    /// compares the logits at every position. nil when there are no prompts.
    public static func compare(base: Checkpoint, patch: Patch, adapter: LoRAAdapter, prompts: [String]) throws -> Result? {
        guard !prompts.isEmpty else { return nil }
        let patched = try LoadedModel(checkpoint: base, patches: [patch])
        let adapted = try TransformerModel(config: patched.config, weights: try AdaptedWeights(base, adapter: adapter))
        var worst: Float = 0
        for p in prompts {
            let ids = try patched.encodePrompt(p)
            let batch = ForwardBatch(sequences: [ids], logitsAt: ids.indices.map { TokenPosition(row: 0, pos: $0) })
            let x = try patched.model.forward(batch).logits, y = try adapted.forward(batch).logits
            for (u, v) in zip(x, y) { for (a, b) in zip(u, v) { worst = max(worst, abs(a - b)) } }
        }
        return Result(maxLogitDifference: worst, prompts: prompts.count)
    }
}
