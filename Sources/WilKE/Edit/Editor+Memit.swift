import Foundation
import Patch

extension Editor {
    /// MEMIT (ALGORITHM.md §3.1) over `hyperparameters.memitLayers`: each layer's ΔW_l becomes one patch
    /// step (method "memit", the step's own layer), applied before the next layer's keys are read, so the
    /// spread sees the model exactly as `wilke apply` will produce it. Returns (L, ‖ΔW_l‖_F/‖W_l‖_F per
    /// layer, the z optimization).
    /// - fixed: the z layer a roll-back asks for; it must be the last MEMIT layer.
    func memitEdit(_ request: EditRequest, _ inputs: RomeInputs, layer fixed: Int?,
                   progress: ((String) -> Void)?) throws -> (Int, [Int: Float], DeltaOptimization) {
        let hp = hyperparameters
        let layers = hp.memitLayers
        if let fixed, fixed != layers.last {
            throw WilKEError.invalidRequest("memit edits layers \(layers.map(String.init).joined(separator: ",")) (z at layer "
                                            + "\(layers.last.map(String.init) ?? "none")), not layer \(fixed)")
        }
        let recorded = [RecordedRequest(prompt: request.prompt, subject: request.subject, targetNew: request.targetNew,
                                        targetTrue: request.targetTrue)]
        var sizes: [Int: Float] = [:]
        var solvers: [Int: CovarianceSolve?] = [:]
        for l in layers where l >= 0 && l < loaded.model.config.nLayer { solvers[l] = try covariance(l) }
        let groups = ContextTemplates.groupSizes(hp.memitTemplateLengths)
        let up = try loaded.model.memitUpdate(inputs, layers: layers, templateGroups: groups, hp,
                                              covariance: { solvers[$0] ?? nil }) { step in
            let record = EditRecord(requests: recorded, method: EditMethod.memit.rawValue, layer: step.layer,
                                    scores: [step.layer: step.relativeSize], hyperParameters: hp.memitRecord)
            try apply(layer: step.layer, left: step.residual, right: step.right, record: record)
            sizes[step.layer] = step.relativeSize
            let rNorm = step.residual.reduce(Float(0)) { $0 + $1 * $1 }.squareRoot()
            progress?(String(format: "layer %2d: ‖R‖ %.4f, ‖ΔW‖/‖W‖ %.6f", step.layer, rNorm, step.relativeSize))
        }
        let opt = up.optimization
        let gap = zip(up.z, up.hAfter).reduce(Float(0)) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }.squareRoot()
        progress?(String(format: "z at layer %d: loss %.3f -> %.3f in %d steps, ‖δ‖ %.3f, ‖z − h^L‖ after the spread %.3f",
                         up.layers.last ?? -1, opt.losses.first?.total ?? 0, opt.losses.last?.total ?? 0, opt.adamSteps,
                         opt.delta.reduce(Float(0)) { $0 + $1 * $1 }.squareRoot(), gap))
        return (up.layers.last ?? -1, sizes, opt)
    }
}
