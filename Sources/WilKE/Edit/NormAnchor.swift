import Foundation

/// Norm-Anchor Scaling (Liu et al. 2026, arXiv 2602.02543, "Norm Anchors Make Model Edits Last"; code
/// SasyaTitech/NAS): every solved value vector v* = m + δ (m: the layer's MLP output at the subject
/// token) is rescaled to a fixed norm ν_l taken from the ORIGINAL model before the update is formed,
///
///     v*' = ν_l · v* / ‖v*‖,   δ' = v*' − m,
///
/// so a layer whose weights have grown (a larger m, a larger clamp radius, a larger v*) no longer feeds
/// a larger update back into itself: the norm-feedback loop the paper identifies. ν_l is the mean
/// ‖v*‖ of reference edits computed on the unedited model, the largest 5% dropped (the reference's
/// upper-trimmed mean). See docs/ALGORITHM_NOTES.md, "Norm-Anchor Scaling", for the deviations.
public enum NormAnchor {
    /// δ' = anchor · (m + δ) / ‖m + δ‖ − m [C], the δ that makes the written v* have norm `anchor` and
    /// the direction of the solved one. A zero v* is left alone (no direction to keep).
    /// - Parameters: m0: [C] the MLP output the update is relative to; delta: [C]
    public static func anchoredDelta(m0: [Float], delta: [Float], anchor: Float) -> [Float] {
        precondition(m0.count == delta.count)
        let v = zip(m0, delta).map { Double($0) + Double($1) }
        let norm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
        guard norm > 0, norm.isFinite else { return delta }
        let s = Double(anchor) / norm
        return zip(v, m0).map { Float($0 * s - Double($1)) }
    }

    /// ‖m + δ‖, the solved (MLP-level) v* before any anchoring.
    static func solvedNorm(_ opt: DeltaOptimization) -> Float {
        Float(zip(opt.mlpOutput, opt.delta).reduce(0.0) { $0 + Double($1.0 + $1.1) * Double($1.0 + $1.1) }.squareRoot())
    }

    /// NAS's anchor from the reference edits' ‖v*‖: their mean after dropping the largest ⌊0.05·n⌋.
    public static func trimmedMean(_ norms: [Double]) -> Double? {
        guard !norms.isEmpty else { return nil }
        let sorted = norms.sorted()
        let kept = sorted.prefix(sorted.count - Int((0.05 * Double(sorted.count)).rounded(.down)))
        return kept.reduce(0, +) / Double(kept.count)
    }
}

extension TransformerModel {
    /// ‖v*‖ = ‖m + δ‖ of one reference edit at `layer`, the δ optimized as the method would (ROME's MLP
    /// site, MEMIT's residual site with its clamp), on THIS model, which for an anchor must be the
    /// unedited one.
    public func valueNorm(_ inputs: RomeInputs, layer: Int, _ hp: EditHyperparameters, method: EditMethod) throws -> Double {
        var h = hp
        if method == .memit { h.clampNormFactor = hp.memitClampNormFactor }
        let opt = try optimizeDelta(inputs, layer: layer, h, site: method == .memit ? .residual : .mlpOutput)
        return Double(NormAnchor.solvedNorm(opt))
    }
}
