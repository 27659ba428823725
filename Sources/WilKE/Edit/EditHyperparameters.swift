/// ROME / WilKE hyper-parameters (ALGORITHM.md §1.4, §2.3). Defaults follow the reference's
/// gpt2-xl / GPT-J files; the per-architecture choices for models the paper did not use are ours and
/// documented in docs/ALGORITHM_NOTES.md. Every field has a CLI flag on `wilke edit`.
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

    public init(romeLayer: Int, scanLayers: [Int]) {
        self.romeLayer = romeLayer
        self.scanLayers = scanLayers
    }

    /// Defaults for a model: WilKE scans the first half of the layers (gpt2-xl: 24 of 48, as the
    /// reference); ROME's fixed layer is the reference's for GPT-2 XL (17) / GPT-J (5), and for other
    /// models the layer at 1/6 of the depth rounded (SmolLM2's 30 layers: 5), about where causal tracing
    /// puts the subject's last-token MLP effect in small models.
    public static func defaults(layers: Int, architecture: String) -> EditHyperparameters {
        let half = max(1, layers / 2)
        var rome = max(0, Int((Double(layers) / 6).rounded()))
        if architecture == "gpt2", layers == 48 { rome = 17 }
        if architecture == "gptj", layers == 28 { rome = 5 }
        return EditHyperparameters(romeLayer: min(rome, layers - 1), scanLayers: Array(0..<half))
    }

    /// The settings as strings, for the patch's record of how an edit was made.
    public var record: [String: String] {
        [
            "v_num_grad_steps": String(steps), "v_lr": String(learningRate), "v_weight_decay": String(weightDecay),
            "clamp_norm_factor": String(clampNormFactor), "kl_factor": String(klFactor),
            "early_stop_loss": String(earlyStopLoss), "mom2_adjustment": String(useCovariance),
            "averaged_keys": String(averagedKeys),
            "context_template_length_params": templateLengths.map { "\($0)" }.joined(separator: ","),
            "template_seed": String(templateSeed),
        ]
    }
}
