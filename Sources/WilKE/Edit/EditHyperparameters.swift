import Formats

/// ROME / WilKE / MEMIT hyper-parameters (ALGORITHM.md §1.4, §2.3, §3.1). Defaults follow the
/// reference's gpt2-xl / GPT-J files; the per-architecture choices for models the papers did not use are
/// ours and documented in docs/ALGORITHM_NOTES.md. Every field has a CLI flag on `wilke edit`. MEMIT
/// shares the δ loop's steps, learning rate, weight decay and KL factor (equal in the MEMIT and ROME
/// gpt2-xl files) and has its own layers, λ, clamp and templates.
public struct EditHyperparameters: Codable, Equatable, Sendable {
    /// v_num_grad_steps: forward passes of the δ optimization (at most steps − 1 Adam updates).
    public var steps = 20
    /// v_lr (Adam).
    public var learningRate: Float = 0.5
    /// v_weight_decay: weight of ‖δ‖ / ‖m₀‖² in the loss.
    public var weightDecay: Float = 0.5
    /// clamp_norm_factor: ‖δ‖ ≤ factor · ‖m₀‖.
    public var clampNormFactor: Float = 4
    /// kl_factor.
    public var klFactor: Float = 0.0625
    /// Early stop when the loss falls below this.
    public var earlyStopLoss: Float = 0.05
    /// mom2_adjustment: u = C⁻¹ k̄ (false: C = I, `--no-covariance`).
    public var useCovariance = true
    /// R-ROME's fix (`--averaged-keys`): the averaged key k̄ instead of the bare-prompt key in r's denominator.
    public var averagedKeys = false
    /// context_template_length_params: (total tokens, samples) per group.
    public var templateLengths: [[Int]] = [[5, 10], [10, 10]]
    /// Seed of the context-template sampler (the reference leaves it unseeded).
    public var templateSeed: UInt64 = 0
    /// ROME's fixed layer (`--method rome`).
    public var romeLayer: Int
    /// WilKE's candidate layers (scanning_ceiling: the first half of the model).
    public var scanLayers: [Int]
    /// How WilKE picks its layer among `scanLayers` (`--scan`).
    public var scanMode: ScanMode = .fast
    /// The most layers the fast scan optimizes exactly (`--scan-top`), the best by LA_est.
    public var scanTop = 3
    /// The fast scan optimizes the best layer by LA_est and each other of the `scanTop` best whose estimate
    /// is within this factor of it (`--scan-margin`); nil optimizes all `scanTop`. The default 1.09 keeps
    /// every layer whose exact LA could still come out more than 10% below the best estimate's, at two
    /// standard deviations of the estimate's measured error (docs/ALGORITHM_NOTES.md, "Fast scan").
    public var scanMargin: Float? = 1.09
    /// MEMIT's layers, ascending; z is optimized at the last one, L (`--memit-layers`).
    public var memitLayers: [Int]
    /// MEMIT's mom2_update_weight λ in ΔW = R Kᵀ (λC + KKᵀ)⁻¹ (`--memit-lambda`).
    public var memitLambda: Double = 15000
    /// MEMIT's clamp_norm_factor: ‖δ‖ ≤ factor · ‖h^L‖ (`--clamp-norm-factor` with `--method memit`).
    public var memitClampNormFactor: Float = 0.75
    /// MEMIT's context templates: one group of 5 samples of 10 tokens (one per start word), after "{}".
    public var memitTemplateLengths: [[Int]] = [[10, 5]]
    /// What an update must leave alone (`--preserve`): nothing beyond the method's own C weighting, or
    /// AlphaEdit's null space of C plus the keys of the run's earlier edits.
    public var preserve: Preservation = .none
    /// AlphaEdit's nullspace_threshold: eigenvectors of C_l with eigenvalue below it span the null space.
    public var nullSpaceThreshold: Double = 2e-2
    /// The energy rule (`--null-space-energy`, a deviation from AlphaEdit, docs/ALGORITHM_NOTES.md): per
    /// layer, the null space is the smallest eigenvalues whose sum is at most this fraction of trace(C)
    /// and that are below the absolute `nullSpaceThreshold` too. nil: the absolute threshold alone.
    public var nullSpaceEnergy: Double?
    /// AlphaEdit's L2: the weight of ‖ΔW‖² beside the earlier edits' keys in a projected update.
    public var nullSpaceL2: Double = 10
    /// NAS (`--norm-anchor`): rescale every solved v* to the original model's reference norm.
    public var normAnchor = false
    /// Reference edits NAS's anchor averages over, per layer, on the unedited model (`--anchor-facts`).
    public var anchorReferences = 8
    /// The ‖W_l‖_F that WilKE's LA(l) divides by (`--la-reference`): the current weight (the paper) or
    /// the unedited one (ours, a deviation: an inflated layer then no longer looks cheap).
    public var laReference: LAReference = .current

    /// - memitLayers: nil gives the five layers centred on `romeLayer` (cut at 0).
    public init(romeLayer: Int, scanLayers: [Int], memitLayers: [Int]? = nil) {
        self.romeLayer = romeLayer
        self.scanLayers = scanLayers
        self.memitLayers = memitLayers ?? Self.memitWindow(romeLayer: romeLayer, layers: .max)
    }

    /// The MEMIT layers for a model without a reference config: romeLayer − 2 ... romeLayer + 2, inside
    /// the model (SmolLM2: 3-7, as EasyEdit's llama-7b 4-8 around its ROME layer 5).
    static func memitWindow(romeLayer: Int, layers: Int) -> [Int] {
        let lo = max(0, romeLayer - 2), hi = min(layers - 1, romeLayer + 2)
        return lo <= hi ? Array(lo...hi) : [romeLayer]
    }

    /// Defaults for a model: WilKE scans the first half of the layers (gpt2-xl: 24 of 48, as the
    /// reference); ROME's fixed layer is the reference's for GPT-2 XL (17) / GPT-J (5), and for other
    /// models the layer at 1/6 of the depth rounded (SmolLM2's 30 layers: 5, scan 0-14; Gemma 3 270M's
    /// 18: 3, scan 0-8), about where causal tracing puts the subject's last-token MLP effect in small
    /// models. The rule does not depend on the family (docs/ALGORITHM_NOTES.md, "Deviations").
    public static func defaults(layers: Int, family: ModelFamily) -> EditHyperparameters {
        let half = max(1, layers / 2)
        var rome = max(0, Int((Double(layers) / 6).rounded()))
        if family == .gpt2, layers == 48 { rome = 17 }
        if family == .gptj, layers == 28 { rome = 5 }
        rome = min(rome, layers - 1)
        // MEMIT: the reference's gpt2-xl 13-17 and GPT-J 3-8, otherwise the window around ROME's layer.
        var memit = memitWindow(romeLayer: rome, layers: layers)
        if family == .gpt2, layers == 48 { memit = Array(13...17) }
        if family == .gptj, layers == 28 { memit = Array(3...8) }
        var hp = EditHyperparameters(romeLayer: rome, scanLayers: Array(0..<half), memitLayers: memit)
        if family == .gpt2, layers == 48 { hp.memitLambda = 20000 }
        // Gemma 3 norms the MLP output before the residual, so only m's direction counts: ‖δ‖ ≤ ‖m₀‖ turns
        // N(m₀ + δ) by at most 90°, where 4‖m₀‖ overwrites m for every key the update reaches (Gemma 3
        // 270M: unrelated answers kept 195/200 over 10 edits at 1, 98/140 over the first 7 at 4; ALGORITHM_NOTES.md).
        if family == .gemma3 { hp.clampNormFactor = 1 }
        return hp
    }

    /// The settings as strings, for the patch's record of how an edit was made. The preservation and
    /// anchor settings appear only when used, so a plain edit's record (and patch bytes) is unchanged.
    public var record: [String: String] {
        var r = baseRecord
        if preserve == .nullSpace {
            r["preserve"] = preserve.rawValue
            r["null_space_threshold"] = String(nullSpaceThreshold)
            if let nullSpaceEnergy { r["null_space_energy"] = String(nullSpaceEnergy) }
            r["null_space_l2"] = String(nullSpaceL2)
        }
        if normAnchor { r["norm_anchor"] = "nas"; r["anchor_references"] = String(anchorReferences) }
        if laReference == .original { r["la_reference"] = laReference.rawValue }
        return r
    }

    private var baseRecord: [String: String] {
        [
            "v_num_grad_steps": String(steps), "v_lr": String(learningRate), "v_weight_decay": String(weightDecay),
            "clamp_norm_factor": String(clampNormFactor), "kl_factor": String(klFactor),
            "early_stop_loss": String(earlyStopLoss), "mom2_adjustment": String(useCovariance),
            "averaged_keys": String(averagedKeys),
            "context_template_length_params": templateLengths.map { "\($0)" }.joined(separator: ","),
            "template_seed": String(templateSeed),
        ]
    }

    /// `record` for a WilKE scan: the scan mode (and the fast scan's top-K) join ROME's settings.
    public var wilkeRecord: [String: String] {
        var r = record
        r["scan"] = scanMode.rawValue
        if scanMode == .fast {
            r["scan_top"] = String(scanTop)
            if let scanMargin { r["scan_margin"] = String(scanMargin) }
        }
        return r
    }

    /// `record` for a MEMIT edit: its clamp, λ, layers and templates replace ROME's.
    public var memitRecord: [String: String] {
        var r = record
        r["clamp_norm_factor"] = String(memitClampNormFactor)
        r["mom2_update_weight"] = String(memitLambda)
        r["layers"] = memitLayers.map(String.init).joined(separator: ",")
        r["context_template_length_params"] = memitTemplateLengths.map { "\($0)" }.joined(separator: ",")
        r.removeValue(forKey: "averaged_keys")
        // AlphaEdit's projected update has no λC term.
        if preserve == .nullSpace { r.removeValue(forKey: "mom2_update_weight") }
        return r
    }
}

extension EditHyperparameters {
    /// Decodes settings stored before MEMIT existed (an evaluation run's config) with MEMIT's defaults,
    /// so such a run still resumes: its layers are the window around ROME's layer (`defaults` gives the
    /// same for every model without a reference config). Settings from before the fast scan decode as
    /// `scanMode = .full`, the scan they ran.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(romeLayer: try c.decode(Int.self, forKey: .romeLayer), scanLayers: try c.decode([Int].self, forKey: .scanLayers),
                  memitLayers: try c.decodeIfPresent([Int].self, forKey: .memitLayers))
        steps = try c.decode(Int.self, forKey: .steps)
        learningRate = try c.decode(Float.self, forKey: .learningRate)
        weightDecay = try c.decode(Float.self, forKey: .weightDecay)
        clampNormFactor = try c.decode(Float.self, forKey: .clampNormFactor)
        klFactor = try c.decode(Float.self, forKey: .klFactor)
        earlyStopLoss = try c.decode(Float.self, forKey: .earlyStopLoss)
        useCovariance = try c.decode(Bool.self, forKey: .useCovariance)
        averagedKeys = try c.decode(Bool.self, forKey: .averagedKeys)
        templateLengths = try c.decode([[Int]].self, forKey: .templateLengths)
        templateSeed = try c.decode(UInt64.self, forKey: .templateSeed)
        memitLambda = try c.decodeIfPresent(Double.self, forKey: .memitLambda) ?? memitLambda
        memitClampNormFactor = try c.decodeIfPresent(Float.self, forKey: .memitClampNormFactor) ?? memitClampNormFactor
        memitTemplateLengths = try c.decodeIfPresent([[Int]].self, forKey: .memitTemplateLengths) ?? memitTemplateLengths
        // Settings stored before the fast scan existed were made by the full scan.
        scanMode = try c.decodeIfPresent(ScanMode.self, forKey: .scanMode) ?? .full
        scanTop = try c.decodeIfPresent(Int.self, forKey: .scanTop) ?? 2
        // Settings stored before the margin existed optimized all of their top K.
        scanMargin = try c.decodeIfPresent(Float.self, forKey: .scanMargin)
        // Settings stored before preservation and anchoring existed used neither.
        preserve = try c.decodeIfPresent(Preservation.self, forKey: .preserve) ?? preserve
        nullSpaceThreshold = try c.decodeIfPresent(Double.self, forKey: .nullSpaceThreshold) ?? nullSpaceThreshold
        nullSpaceEnergy = try c.decodeIfPresent(Double.self, forKey: .nullSpaceEnergy)
        nullSpaceL2 = try c.decodeIfPresent(Double.self, forKey: .nullSpaceL2) ?? nullSpaceL2
        normAnchor = try c.decodeIfPresent(Bool.self, forKey: .normAnchor) ?? normAnchor
        anchorReferences = try c.decodeIfPresent(Int.self, forKey: .anchorReferences) ?? anchorReferences
        laReference = try c.decodeIfPresent(LAReference.self, forKey: .laReference) ?? laReference
    }
}

extension EditHyperparameters {
    /// One line naming what produces an edit with `method` under these settings, for summaries:
    /// "wilke (fast scan of 0-14, top 3 within 1.09x) + null-space (threshold 0.02, L2 10) + norm anchor (8 reference facts)".
    public func describe(_ method: EditMethod, layer: Int? = nil) -> String {
        func span(_ ls: [Int]) -> String { ls.count > 1 ? "\(ls.first!)-\(ls.last!)" : ls.map(String.init).joined() }
        var s: String
        switch method {
        case .rome: s = "rome (layer \(layer ?? romeLayer))"
        case .wilke:
            var scan = "\(scanMode.rawValue) scan of \(span(scanLayers))"
            if scanMode == .fast { scan += ", top \(scanTop)" + (scanMargin.map { String(format: " within %.2fx", $0) } ?? "") }
            s = layer.map { "wilke (layer \($0))" } ?? "wilke (\(scan))"
        case .memit: s = (preserve == .nullSpace ? "alphaedit" : "memit") + " (layers \(span(memitLayers)))"
        }
        if preserve == .nullSpace {
            let rule = (nullSpaceEnergy.map { "energy \($0), " } ?? "") + "threshold \(nullSpaceThreshold)"
            s += " + null-space (\(rule), L2 \(nullSpaceL2))"
        }
        if normAnchor { s += " + norm anchor (\(anchorReferences) reference facts)" }
        if laReference == .original { s += " + LA against the original ‖W‖" }
        return s
    }
}

/// The weight norm WilKE's LA(l) = ‖ΔW_l‖_F / ‖W_l‖_F divides by (`--la-reference`).
public enum LAReference: String, Codable, Sendable, CaseIterable {
    /// The layer's weight as it now is (the paper's code).
    case current
    /// The layer's unedited weight (a deviation from the paper, see docs/ALGORITHM_NOTES.md).
    case original
}

/// What an edit preserves beyond its method's own rule (`--preserve`).
public enum Preservation: String, Codable, Sendable, CaseIterable {
    /// The method as published.
    case none
    /// AlphaEdit's null-space projection of the update, and the run's earlier edits' keys kept
    /// (docs/ALGORITHM_NOTES.md, "Null-space preservation").
    case nullSpace = "null-space"
}
