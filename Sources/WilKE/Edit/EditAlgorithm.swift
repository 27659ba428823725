import Foundation
import Patch

/// An edit method as a value (issue #13): the one place that says which layers a method edits (and so
/// needs key statistics for), which context templates it samples, and how it turns one request into
/// layer updates given a key-statistics handle. `wilke edit`, `wilke eval` and `wilke dev accept` take
/// their method and layer rules from it; `Editor` runs it.
public enum EditAlgorithm: Equatable, Sendable {
    /// ROME's rank-one update at one layer, recorded under `recordedAs` (WilKE's roll-back at its
    /// earlier choice is ROME at that layer, recorded as "wilke").
    case rome(layer: Int, recordedAs: EditMethod = .rome)
    /// WilKE: the rank-one update at the candidate layer with the smallest LA (ALGORITHM.md §1), by the
    /// fast or the full scan; the fast scan optimizes at most `top` layers, those within `margin` of the
    /// best estimate (nil: all `top`).
    case wilke(layers: [Int], scan: ScanMode, top: Int, margin: Float?)
    /// MEMIT over ascending `layers`, z at the last (ALGORITHM.md §3.1); AlphaEdit with a null space.
    case memit(layers: [Int])

    /// What `method` means under `hp`. - fixed: a fixed layer: ROME's layer, WilKE's roll-back at its
    /// earlier choice (no scan), or for MEMIT its z layer, which must be the last MEMIT layer.
    public init(method: EditMethod, hyperparameters hp: EditHyperparameters, layer fixed: Int? = nil) throws {
        switch method {
        case .rome: self = .rome(layer: fixed ?? hp.romeLayer)
        case .wilke:
            if let fixed { self = .rome(layer: fixed, recordedAs: .wilke) } else {
                guard !hp.scanLayers.isEmpty else { throw WilKEError.invalidRequest("no layer to edit") }
                self = .wilke(layers: hp.scanLayers, scan: hp.scanMode, top: hp.scanTop, margin: hp.scanMargin)
            }
        case .memit:
            let layers = hp.memitLayers
            if let fixed, fixed != layers.last {
                throw WilKEError.invalidRequest("memit edits layers \(layers.map(String.init).joined(separator: ",")) (z at layer "
                                                + "\(layers.last.map(String.init) ?? "none")), not layer \(fixed)")
            }
            self = .memit(layers: layers)
        }
    }

    /// The method recorded in the patch and reports.
    public var method: EditMethod {
        switch self {
        case .rome(_, let m): m
        case .wilke: .wilke
        case .memit: .memit
        }
    }

    /// Every layer the algorithm may edit: the layers whose key statistics (and null spaces) it needs.
    public var layers: [Int] {
        switch self {
        case .rome(let l, _): [l]
        case .wilke(let ls, _, _, _): ls
        case .memit(let ls): ls
        }
    }

    /// The layers whose NAS anchor it may need (MEMIT anchors z's layer only).
    public var anchorLayers: [Int] {
        if case .memit(let ls) = self { return ls.last.map { [$0] } ?? [] }
        return layers
    }

    /// Throws `invalidLayer` for a layer outside a model of `nLayer` layers.
    public func validate(nLayer: Int) throws {
        guard !layers.isEmpty else { throw WilKEError.invalidRequest("no layer to edit") }
        for l in layers where l < 0 || l >= nLayer { throw WilKEError.invalidLayer(l) }
    }

    /// MEMIT samples its own templates ("{}" + 5 contexts); ROME and WilKE share ROME's 21.
    public var usesMemitTemplates: Bool {
        if case .memit = self { return true }
        return false
    }
}

/// What an algorithm needs from the editor running it.
struct EditContext {
    let model: TransformerModel
    let hp: EditHyperparameters
    let statistics: KeyStatisticsHandle
    /// NAS's anchor ν_l for a layer (nil without `--norm-anchor`).
    let anchor: (Int) throws -> Float?
    let scanWorkers: Int
    /// Writes W_l += left ⊗ right into the patch and the model. - left: [C]; right: [F]
    let apply: (_ layer: Int, _ left: [Float], _ right: [Float], _ record: EditRecord) throws -> Void
    let progress: ((String) -> Void)?
    let request: RecordedRequest
}

/// One request's result: the edited layer (MEMIT: L), ‖ΔW_l‖_F/‖W_l‖_F per computed layer, the δ
/// optimization, and WilKE's scan mode and estimates.
struct EditOutcome {
    var layer: Int
    var sizes: [Int: Float]
    var optimization: DeltaOptimization
    var scan: ScanMode? = nil
    var estimates: [Int: Float]? = nil
    /// Layers the edit wrote (their keys join the preserved-key accumulator).
    var editedLayers: [Int]
}

extension EditAlgorithm {
    /// Computes and applies the update(s) of one request through `context`.
    func run(_ inputs: RomeInputs, _ context: EditContext) throws -> EditOutcome {
        switch self {
        case .rome(let layer, let method): return try runROME(inputs, layer: layer, method: method, context)
        case .wilke(let layers, let scan, let top, let margin):
            return try runWilKE(inputs, layers: layers, scan: scan, top: top, margin: margin, context)
        case .memit(let layers): return try runMEMIT(inputs, layers: layers, context)
        }
    }

    /// The record's settings plus what the update saw at `layer`: the null space's rank and the earlier
    /// keys it avoided, NAS's anchor and the solved ‖v*‖ it rescaled.
    static func settings(_ base: [String: String], _ st: LayerKeyStatistics, anchor: Float?, vStarNorm: Float?) -> [String: String] {
        var r = base
        if let ns = st.nullSpace {
            r["null_space_rank"] = String(ns.rank)
            r["preserved_keys"] = String(st.preserved.count)
        }
        if let anchor, let vStarNorm {
            r["anchor_norm"] = String(anchor)
            r["v_star_norm"] = String(vStarNorm)
        }
        return r
    }

    private func runROME(_ inputs: RomeInputs, layer: Int, method: EditMethod, _ c: EditContext) throws -> EditOutcome {
        guard layer >= 0 && layer < c.model.config.nLayer else { throw WilKEError.invalidLayer(layer) }
        let st = try c.statistics.layer(layer), anchor = try c.anchor(layer)
        let up = try c.model.rankOneUpdate(inputs, layer: layer, c.hp, statistics: st, anchor: anchor)
        c.progress?(String(format: "layer %2d: LA %.5f, loss %.3f -> %.3f in %d steps", layer, up.relativeSize,
                           up.optimization.losses.first?.total ?? 0, up.optimization.losses.last?.total ?? 0, up.optimization.adamSteps))
        let record = EditRecord(requests: [c.request], method: method.rawValue, layer: layer, scores: [layer: up.relativeSize],
                                hyperParameters: Self.settings(c.hp.record, st, anchor: anchor, vStarNorm: NormAnchor.solvedNorm(up.optimization)))
        try c.apply(layer, up.r, up.u, record)
        return EditOutcome(layer: layer, sizes: [layer: up.relativeSize], optimization: up.optimization, editedLayers: [layer])
    }

    /// WilKE (ALGORITHM.md §1.1): one shared δ = 0 pass gives LA_est for every scanned layer; the full
    /// scan then optimizes every layer, the fast scan only the best estimate and those of the `top` best within
    /// a factor `margin` of it; the exact argmin among the optimized layers is applied. With a null space every LA is the projected
    /// update's.
    private func runWilKE(_ inputs: RomeInputs, layers: [Int], scan: ScanMode, top: Int, margin: Float?, _ c: EditContext) throws -> EditOutcome {
        let model = c.model, hp = c.hp
        for l in layers where l < 0 || l >= model.config.nLayer { throw WilKEError.invalidLayer(l) }
        guard !layers.isEmpty else { throw WilKEError.invalidRequest("no layer to edit") }
        var stats: [Int: LayerKeyStatistics] = [:]
        for l in layers { stats[l] = try c.statistics.layer(l) }
        let shared = try model.sharedScanPass(inputs, layers: layers, hp)
        let est = try model.layerEstimates(shared, layers: layers, hp, statistics: layers.map { stats[$0]! })
        let optimized = scan == .fast ? LayerEstimate.top(est, count: top, margin: margin) : layers
        if scan == .fast {
            c.progress?("estimates: " + est.sorted { $0.estimate < $1.estimate }.prefix(5)
                .map { String(format: "layer %d %.3g", $0.layer, $0.estimate) }.joined(separator: ", ")
                + "; optimizing layers " + optimized.map(String.init).joined(separator: ", "))
        }
        let anchors = try optimized.map { try c.anchor($0) }
        let ups = try model.scan(inputs, layers: optimized, hp, statistics: optimized.map { stats[$0]! }, anchors: anchors,
                                 workers: c.scanWorkers, shared: shared) { up, n in
            c.progress?(String(format: "layer %2d (%d/%d): LA %.5f, loss %.3f -> %.3f in %d steps", up.layer, n, optimized.count,
                               up.relativeSize, up.optimization.losses.first?.total ?? 0, up.optimization.losses.last?.total ?? 0,
                               up.optimization.adamSteps))
        }
        var best: RankOneUpdate?, bestAnchor: Float?
        var sizes: [Int: Float] = [:]
        for (up, anchor) in zip(ups, anchors) {
            sizes[up.layer] = up.relativeSize
            // First minimum wins, as list.index(min(...)) in the reference.
            if best == nil || up.relativeSize < best!.relativeSize { best = up; bestAnchor = anchor }
        }
        guard let chosen = best else { throw WilKEError.invalidRequest("no layer to edit") }
        var estimates: [Int: Float] = [:]
        for e in est where e.estimate.isFinite { estimates[e.layer] = e.estimate }
        let record = EditRecord(requests: [c.request], method: EditMethod.wilke.rawValue, layer: chosen.layer, scores: sizes,
                                estimates: estimates,
                                hyperParameters: Self.settings(hp.wilkeRecord, stats[chosen.layer]!, anchor: bestAnchor,
                                                               vStarNorm: NormAnchor.solvedNorm(chosen.optimization)))
        try c.apply(chosen.layer, chosen.r, chosen.u, record)
        return EditOutcome(layer: chosen.layer, sizes: sizes, optimization: chosen.optimization, scan: scan, estimates: estimates,
                           editedLayers: [chosen.layer])
    }

    /// MEMIT (ALGORITHM.md §3.1) or, with a null space, AlphaEdit (§3.2): each layer's ΔW_l becomes one
    /// patch step (method "memit", the step's own layer), applied before the next layer's keys are read,
    /// so the spread sees the model exactly as `wilke apply` will produce it.
    private func runMEMIT(_ inputs: RomeInputs, layers: [Int], _ c: EditContext) throws -> EditOutcome {
        let hp = c.hp
        var sizes: [Int: Float] = [:]
        var found: [Int: LayerKeyStatistics] = [:]
        for l in layers where l >= 0 && l < c.model.config.nLayer { found[l] = try c.statistics.layer(l) }
        let stats = found
        let anchor = try layers.last.flatMap { try c.anchor($0) }
        let groups = ContextTemplates.groupSizes(hp.memitTemplateLengths)
        let up = try c.model.memitUpdate(inputs, layers: layers, templateGroups: groups, hp,
                                         statistics: { stats[$0] ?? LayerKeyStatistics(solve: nil) }, anchor: anchor) { step in
            let st = stats[step.layer] ?? LayerKeyStatistics(solve: nil)
            let record = EditRecord(requests: [c.request], method: EditMethod.memit.rawValue, layer: step.layer,
                                    scores: [step.layer: step.relativeSize],
                                    hyperParameters: Self.settings(hp.memitRecord, st, anchor: anchor, vStarNorm: step.valueNorm))
            try c.apply(step.layer, step.residual, step.right, record)
            sizes[step.layer] = step.relativeSize
            let rNorm = step.residual.reduce(Float(0)) { $0 + $1 * $1 }.squareRoot()
            c.progress?(String(format: "layer %2d: ‖R‖ %.4f, ‖ΔW‖/‖W‖ %.6f", step.layer, rNorm, step.relativeSize))
        }
        let opt = up.optimization
        let gap = zip(up.z, up.hAfter).reduce(Float(0)) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }.squareRoot()
        c.progress?(String(format: "z at layer %d: loss %.3f -> %.3f in %d steps, ‖δ‖ %.3f, ‖z − h^L‖ after the spread %.3f",
                           up.layers.last ?? -1, opt.losses.first?.total ?? 0, opt.losses.last?.total ?? 0, opt.adamSteps,
                           opt.delta.reduce(Float(0)) { $0 + $1 * $1 }.squareRoot(), gap))
        return EditOutcome(layer: up.layers.last ?? -1, sizes: sizes, optimization: opt, editedLayers: layers)
    }
}
