import ArgumentParser
import WilKE

/// The hyper-parameter and key-statistics flags `edit` and `eval` share, and the two things both do with
/// them: the hyper-parameters for a model, and the covariance of the layers an edit may touch.
struct EditTuning: ParsableArguments {
    @Option(name: .customLong("scan-layers"), help: "WilKE's candidate layers, e.g. 0-14 (default: the first half).") var scanLayers: String?
    @Option(help: "WilKE's layer choice: fast (rank the layers by an estimate of LA from one pass at δ = 0, optimize the best --scan-top) or full (optimize every scanned layer, the paper's scan).")
    var scan: ScanMode = .fast
    @Option(name: .customLong("scan-top"), help: "The most layers the fast scan optimizes exactly (default 3).") var scanTop: Int?
    @Option(name: .customLong("scan-margin"), help: "The fast scan optimizes the best layer by estimate and those of the --scan-top best within this factor of it (default 1.09; 0 optimizes all --scan-top).")
    var scanMargin: Float?
    @Option(name: .customLong("memit-layers"), help: "MEMIT's layers, e.g. 3-7; z is optimized at the last (default: see docs/ALGORITHM_NOTES.md).") var memitLayers: String?
    @Option(name: .customLong("memit-lambda"), help: "MEMIT's covariance weight λ (mom2_update_weight, default 15000).") var memitLambda: Double?
    @Flag(name: .customLong("no-covariance"), help: "Use C = I instead of the key statistics.") var noCovariance = false
    @Flag(name: .customLong("averaged-keys"), help: "R-ROME's fix: the template-averaged key in the update's denominator.") var averagedKeys = false
    @Option(help: "Forward passes of the δ optimization.") var steps: Int?
    @Option(help: "Adam learning rate.") var lr: Float?
    @Option(name: .customLong("weight-decay"), help: "Weight of ‖δ‖/‖m₀‖² in the loss.") var weightDecay: Float?
    @Option(name: .customLong("clamp-norm-factor"), help: "‖δ‖ ≤ factor·‖m₀‖ (default 4; memit: factor·‖h^L‖, default 0.75).") var clampNormFactor: Float?
    @Option(name: .customLong("kl-factor"), help: "Weight of the KL term.") var klFactor: Float?
    @Option(name: .customLong("template-seed"), help: "Seed of the context-template sampler.") var templateSeed: UInt64?
    @Option(name: .customLong("stats-tokens"), help: "Token budget of the key statistics (see `wilke stats`).") var statsTokens: Int?
    @Option(help: "Corpus for the key statistics (default: text sampled from the model).") var corpus: String?
    @Option(help: "What an update must leave alone: none, or null-space (AlphaEdit: project every update onto the null space of the key statistics and keep the run's earlier edits' keys; memit + null-space is AlphaEdit).")
    var preserve: Preservation = .none
    @Option(name: .customLong("null-space-threshold"), help: "Eigenvalues of C below this span the null space (AlphaEdit's nullspace_threshold, default 0.02).")
    var nullSpaceThreshold: Double?
    @Option(name: .customLong("null-space-energy"), help: "Per layer, only the smallest eigenvalues of C summing to at most this fraction of its trace (and below 0.02) span the null space (e.g. 0.01; a deviation from AlphaEdit, see docs/ALGORITHM_NOTES.md).")
    var nullSpaceEnergy: Double?
    @Option(name: .customLong("null-space-l2"), help: "AlphaEdit's L2, the weight of ‖ΔW‖² beside the earlier edits' keys (default 10).")
    var nullSpaceL2: Double?
    @Flag(name: .customLong("norm-anchor"), help: "Norm-Anchor Scaling: rescale every solved value vector v* to the unedited model's mean ‖v*‖ of reference edits.")
    var normAnchor = false
    @Option(name: .customLong("anchor-facts"), help: "Reference edits per layer behind the norm anchor (default 8).") var anchorFacts: Int?
    @Option(name: .customLong("la-reference"), help: "The ‖W_l‖_F WilKE's LA divides by: current (the paper) or original (the unedited layer; a deviation, see docs/ALGORITHM_NOTES.md).")
    var laReference: LAReference = .current

    /// The architecture's defaults with every given flag applied; `layer` is ROME's fixed layer.
    func hyperparameters(_ loaded: LoadedModel, method: EditMethod, layer: Int?) throws -> EditHyperparameters {
        let n = loaded.config.nLayer
        var hp = EditHyperparameters.defaults(layers: n, family: loaded.config.family)
        if let layer { hp.romeLayer = layer }
        if let scanLayers { hp.scanLayers = try parseLayers(scanLayers, count: n) }
        hp.scanMode = scan
        if let scanTop {
            guard scanTop >= 1 else { throw ValidationError("--scan-top must be at least 1") }
            hp.scanTop = scanTop
        }
        if let scanMargin {
            guard scanMargin == 0 || (scanMargin >= 1 && scanMargin.isFinite) else {
                throw ValidationError("--scan-margin must be at least 1 (or 0: optimize all --scan-top layers)")
            }
            hp.scanMargin = scanMargin == 0 ? nil : scanMargin
        }
        if let memitLayers { hp.memitLayers = try parseLayers(memitLayers, count: n) }
        if let memitLambda { hp.memitLambda = memitLambda }
        hp.useCovariance = !noCovariance
        hp.averagedKeys = averagedKeys
        if let steps { hp.steps = steps }
        if let lr { hp.learningRate = lr }
        if let weightDecay { hp.weightDecay = weightDecay }
        if let clampNormFactor {
            if method == .memit { hp.memitClampNormFactor = clampNormFactor } else { hp.clampNormFactor = clampNormFactor }
        }
        if let klFactor { hp.klFactor = klFactor }
        if let templateSeed { hp.templateSeed = templateSeed }
        hp.preserve = preserve
        if let nullSpaceThreshold {
            guard nullSpaceThreshold > 0, nullSpaceThreshold.isFinite else { throw ValidationError("--null-space-threshold must be positive") }
            hp.nullSpaceThreshold = nullSpaceThreshold
        }
        if let nullSpaceEnergy {
            guard nullSpaceEnergy > 0, nullSpaceEnergy < 1 else { throw ValidationError("--null-space-energy must be between 0 and 1") }
            hp.nullSpaceEnergy = nullSpaceEnergy
        }
        if let nullSpaceL2 {
            guard nullSpaceL2 > 0, nullSpaceL2.isFinite else { throw ValidationError("--null-space-l2 must be positive") }
            hp.nullSpaceL2 = nullSpaceL2
        }
        if preserve == .nullSpace, noCovariance { throw ValidationError("--preserve null-space needs the key statistics; drop --no-covariance") }
        if (nullSpaceThreshold != nil || nullSpaceL2 != nil || nullSpaceEnergy != nil), preserve != .nullSpace {
            throw ValidationError("--null-space-threshold, --null-space-energy and --null-space-l2 go with --preserve null-space")
        }
        hp.laReference = laReference
        hp.normAnchor = normAnchor
        if let anchorFacts {
            guard normAnchor else { throw ValidationError("--anchor-facts goes with --norm-anchor") }
            guard anchorFacts >= 1 else { throw ValidationError("--anchor-facts must be at least 1") }
            hp.anchorReferences = anchorFacts
        }
        return hp
    }

    /// The key statistics of the algorithm's layers (cached, or computed in one pass with a progress bar)
    /// and, with --preserve null-space, their null spaces (cached beside them).
    /// - resident: keep every layer's factor in memory (`eval`: hundreds of edits solve at the same layers).
    ///   Otherwise each solve loads and factors its layer's file and lets it go (`edit`: an 8B-shaped layer's
    ///   factor is 0.77 GiB, which the δ optimization and the patch step should not carry).
    func statisticsSource(_ loaded: LoadedModel, algorithm: EditAlgorithm, _ hp: EditHyperparameters,
                          resident: Bool) throws -> KeyStatisticsSource {
        guard hp.useCovariance else { return .identity }
        let cache = StatsCache()
        let keys: [StatsKey]
        let solve: @Sendable (Int) throws -> CovarianceSolve?
        if resident {
            let stats = try layerStatistics(loaded, layers: algorithm.layers)
            let solvers = Dictionary(uniqueKeysWithValues: stats.map { ($0.covariance.layer, $0.covariance) })
            keys = stats.map(\.key)
            solve = { solvers[$0]?.solver }
        } else {
            keys = try preparedStatistics(loaded, layers: algorithm.layers)
            let byLayer = Dictionary(uniqueKeysWithValues: keys.map { ($0.layer, $0) })
            solve = { l in
                guard let key = byLayer[l] else { return nil }
                let once: CovarianceSolve = { k in try cache.covariance(key).solve(k) }
                return once
            }
        }
        var spaces: [Int: NullSpace] = [:]
        if hp.preserve == .nullSpace {
            for key in keys {
                var ns = try cache.nullSpace(for: key, threshold: hp.nullSpaceThreshold)
                if let energy = hp.nullSpaceEnergy {
                    // Never above the absolute threshold: where one outlier direction holds nearly all of tr C
                    // (SmolLM2's layer 11: 99.9%), ε of the trace would call every other direction null.
                    // The cached decomposition holds every eigenvalue; a smaller threshold keeps a prefix of its basis.
                    let t = min(hp.nullSpaceThreshold, NullSpace.energyThreshold(eigenvalues: ns.eigenvalues, fraction: energy))
                    ns = ns.truncated(below: t)
                }
                printErr(String(format: "layer %d: null space of rank %d of %d (eigenvalues < %g, %.1f%% of the key energy)",
                                key.layer, ns.rank, ns.dim, ns.threshold, 100 * ns.energyFraction))
                spaces[key.layer] = ns
            }
        }
        let nullSpaces = spaces
        return KeyStatisticsSource(solve: solve, nullSpace: { nullSpaces[$0] })
    }

    /// C_l for `layers` (cached, or computed in one pass with a progress bar); empty with --no-covariance.
    func keyStatistics(_ loaded: LoadedModel, layers: [Int], enabled: Bool) throws -> [Int: KeyCovariance] {
        guard enabled else { return [:] }
        return Dictionary(uniqueKeysWithValues: try layerStatistics(loaded, layers: layers).map { ($0.covariance.layer, $0.covariance) })
    }

    func layerStatistics(_ loaded: LoadedModel, layers: [Int]) throws -> [LayerStats] {
        let bar = ProgressBar("key statistics")
        return try KeyStatistics.compute(model: loaded.model, tokenizer: loaded.tokenizer, fingerprint: fingerprint(loaded),
                                         options: statsOptions(layers), cache: StatsCache()) { bar.update($0.done, $0.total) }
    }

    /// The cache keys of `layers`' statistics, computing the missing ones; nothing stays loaded.
    func preparedStatistics(_ loaded: LoadedModel, layers: [Int]) throws -> [StatsKey] {
        let bar = ProgressBar("key statistics")
        return try KeyStatistics.prepare(model: loaded.model, tokenizer: loaded.tokenizer, fingerprint: fingerprint(loaded),
                                         options: statsOptions(layers), cache: StatsCache()) { bar.update($0.done, $0.total) }
    }

    private func statsOptions(_ layers: [Int]) -> StatsOptions {
        var options = StatsOptions(layers: layers)
        options.tokens = statsTokens
        if let corpus { options.corpus = .file(corpus) }
        return options
    }

    private func fingerprint(_ loaded: LoadedModel) -> ModelFingerprint { loaded.checkpointFingerprint }
}
