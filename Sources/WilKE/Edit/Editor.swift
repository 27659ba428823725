import Foundation
import Formats
import Patch

public enum EditMethod: String, Sendable, Codable, CaseIterable { case wilke, rome, memit }

/// What one edit did, for the report and the patch record.
public struct EditReport: Sendable, Codable {
    public var request: EditRequest
    public var method: EditMethod
    /// The edited layer (WilKE's choice, ROME's layer), or MEMIT's z layer L (the last of its layers).
    public var layer: Int
    /// ‖ΔW_l‖_F / ‖W_l‖_F per computed layer: WilKE's LA(l) per scanned layer (one entry for ROME), or
    /// MEMIT's update size per edited layer.
    public var relativeSizes: [Int: Float]
    /// WilKE's scan mode (nil for ROME, MEMIT and a roll-back at a fixed layer).
    public var scan: ScanMode?
    /// WilKE: LA_est(l) per scanned layer (both modes compute it; the fast scan ranks by it). Layers the
    /// loss cannot reach (an infinite estimate) are left out.
    public var estimates: [Int: Float]?
    /// Loss per forward pass at the chosen layer.
    public var losses: [Float]
    public var adamSteps: Int
    /// Teacher-forced probability of the new / old target after the filled prompt, before and after.
    public var newBefore: Double, newAfter: Double
    public var oldBefore: Double?, oldAfter: Double?
    public var seconds: Double
}

/// Applies edits one after another to a loaded model (lifelong editing: each edit is computed on the
/// model as already edited) and records each as a patch step on the stored tensor bytes. In memory an
/// edited matrix is its stored view plus the steps' factors as a low-rank term (what `wilke ask --patch`
/// serves for the same patch), so the model seen by the next edit is what `wilke apply` of the patch
/// produces up to f32 rounding, and a replayed run rebuilds it bit for bit. With `--preserve null-space` the editor's key-statistics
/// handle accumulates the keys of every edit it makes, so later edits avoid overwriting earlier ones.
public final class Editor {
    public let loaded: LoadedModel
    public var hyperparameters: EditHyperparameters
    /// C_l's solve and null space per layer, and the keys of the edits made so far.
    public let statistics: KeyStatisticsHandle
    public private(set) var templates: [String]?
    /// Layers WilKE's scan computes at once, each on one core. Above 1 the scan switches OpenBLAS to one
    /// thread for the whole process while it runs (see `TransformerModel.scan`), so only a caller that runs
    /// no other BLAS work at the same time (the `wilke` tool) should raise it, e.g. to `BLAS.threads`.
    /// Results do not depend on it.
    public var scanWorkers = 1
    /// Where sampled templates are kept between runs (`TemplateCache`); nil samples every run (tests).
    public var templateCache: TemplateCache?
    /// MEMIT's own templates ("{}" + 5 of 10 tokens), sampled once like `templates`.
    public private(set) var memitTemplates: [String]?
    /// The facts NAS's anchor averages over (`--norm-anchor`; the first `anchorReferences` are used),
    /// each edited at the anchored layer on the unedited model and not applied.
    public var anchorRequests: [EditRequest] = []
    /// NAS's anchor ν_l per (templates, layer) computed so far.
    public private(set) var anchors: [String: Float] = [:]
    private var builder: PatchBuilder
    private var current: [String: TensorBytes] = [:]
    /// The unedited model, for anchors needed after the first edit (a second view of the checkpoint).
    private var pristine: TransformerModel?

    /// - covariance: solves C_l x = k for a layer (nil: no statistics, C = I); no null space.
    public convenience init(_ loaded: LoadedModel, hyperparameters: EditHyperparameters,
                            covariance: @escaping @Sendable (Int) throws -> CovarianceSolve?) {
        self.init(loaded, hyperparameters: hyperparameters, statistics: KeyStatisticsSource(solve: covariance))
    }

    public init(_ loaded: LoadedModel, hyperparameters: EditHyperparameters, statistics source: KeyStatisticsSource) {
        self.loaded = loaded
        self.hyperparameters = hyperparameters
        statistics = KeyStatisticsHandle(source, l2: hyperparameters.nullSpaceL2)
        if hyperparameters.laReference == .original {
            // The unedited ‖W_l‖_F straight from the checkpoint's stored tensor, whatever the model holds now.
            let ckpt = loaded.checkpoint
            statistics.referenceNorm = { l in
                let name = "blk.\(l).ffn_down.weight"
                guard let w = try CheckpointWeights(ckpt).weight(name) else { throw WilKEError.missingTensor(name) }
                return w.sumOfSquares().squareRoot()  // panel by panel from the mapping, in logical order
            }
        }
        builder = PatchBuilder(architecture: loaded.checkpoint.patchArchitecture, format: loaded.checkpoint.patchFormat)
    }

    /// The context templates, sampled once from the model as it was before the first edit.
    public func contextTemplates() throws -> [String] {
        if let t = templates { return t }
        let t = try sampledTemplates(hyperparameters.templateLengths)
        templates = t
        return t
    }

    /// MEMIT's context templates (`hyperparameters.memitTemplateLengths`), sampled once.
    public func memitContextTemplates() throws -> [String] {
        if let t = memitTemplates { return t }
        let t = try sampledTemplates(hyperparameters.memitTemplateLengths)
        memitTemplates = t
        return t
    }

    /// Whether this editor has changed the model (a cached template is the unedited model's).
    private var edited: Bool { !current.isEmpty }

    /// From `templateCache` when it has them for this model (sampled before any edit of this editor,
    /// so the unedited model's), else sampled and stored there (a cache that cannot be written is skipped).
    private func sampledTemplates(_ lengths: [[Int]]) throws -> [String] {
        let seed = hyperparameters.templateSeed
        guard let cache = templateCache, !edited else {
            return try ContextTemplates.sample(loaded, lengths: lengths, seed: seed)
        }
        let model = TemplateCache.modelIdentity(loaded)
        if let t = cache.load(model: model, lengths: lengths, seed: seed) { return t }
        let t = try ContextTemplates.sample(loaded, lengths: lengths, seed: seed)
        try? cache.store(t, model: model, lengths: lengths, seed: seed)
        return t
    }

    /// Uses templates sampled earlier (the same model before any edit), so runs share them.
    public func adoptTemplates(_ t: [String]) { templates = t }

    /// The patch holding every edit made so far, in order.
    public func patch() -> Patch { builder.build() }

    /// Makes one edit. `layer` fixes the layer (ROME, or a roll-back at WilKE's earlier choice); for MEMIT
    /// it names the z layer and must be the last of `hyperparameters.memitLayers` (a roll-back passes the
    /// report's layer, so it edits the same layers).
    /// - progress: called with a short status line per layer.
    public func edit(_ request: EditRequest, method: EditMethod, layer fixed: Int? = nil,
                     allowKnownTarget: Bool = false, progress: ((String) -> Void)? = nil) throws -> EditReport {
        let algorithm = try EditAlgorithm(method: method, hyperparameters: hyperparameters, layer: fixed)
        return try edit(request, algorithm: algorithm, allowKnownTarget: allowKnownTarget, progress: progress)
    }

    /// Makes one edit with `algorithm`.
    public func edit(_ request: EditRequest, algorithm: EditAlgorithm, allowKnownTarget: Bool = false,
                     progress: ((String) -> Void)? = nil) throws -> EditReport {
        let start = Date()
        let templates = algorithm.usesMemitTemplates ? try memitContextTemplates() : try contextTemplates()
        let inputs = try RomeInputs(request: request, templates: templates, tokenizer: loaded.tokenizer)
        let prompt = try loaded.encodePrompt(request.filledPrompt)
        let newBefore = try targetProbability(prompt, inputs.target)
        let oldIDs = request.targetTrue.map { loaded.tokenizer.encode($0.hasPrefix(" ") ? $0 : " " + $0, addSpecial: false) }
        let oldBefore = try oldIDs.map { try targetProbability(prompt, $0) }
        if !allowKnownTarget, try greedyMatches(prompt, inputs.target) {
            throw WilKEError.invalidRequest("the model already answers \"\(request.targetNew)\" to \"\(request.filledPrompt)\"")
        }
        let context = EditContext(model: loaded.model, hp: hyperparameters, statistics: statistics,
                                  anchor: { [unowned self] l in try self.anchor(layer: l, algorithm: algorithm) },
                                  scanWorkers: scanWorkers, apply: { [unowned self] in try self.apply(layer: $0, left: $1, right: $2, record: $3) },
                                  progress: progress, request: recorded(request))
        let out = try algorithm.run(inputs, context)
        try preserveKeys(request, layers: out.editedLayers, memit: algorithm.usesMemitTemplates)
        return EditReport(request: request, method: algorithm.method, layer: out.layer, relativeSizes: out.sizes, scan: out.scan,
                          estimates: out.estimates, losses: out.optimization.losses.map(\.total), adamSteps: out.optimization.adamSteps,
                          newBefore: newBefore, newAfter: try targetProbability(prompt, inputs.target),
                          oldBefore: oldBefore, oldAfter: try oldIDs.map { try targetProbability(prompt, $0) },
                          seconds: Date().timeIntervalSince(start))
    }

    private func recorded(_ r: EditRequest) -> RecordedRequest {
        RecordedRequest(prompt: r.prompt, subject: r.subject, targetNew: r.targetNew, targetTrue: r.targetTrue)
    }

    /// Records W_l += left ⊗ right (ROME: r ûᵀ) as a patch step on the stored tensor (its exact result
    /// bytes, the hash chain `wilke apply` checks) and adds the same factors to the model as a low-rank
    /// term, so the engine multiplies by W + left ⊗ right without a dense copy. - left: [C]; right: [F]
    func apply(layer: Int, left: [Float], right: [Float], record: EditRecord) throws {
        let ckpt = loaded.checkpoint
        let name = "blk.\(layer).ffn_down.weight"
        guard let t = ckpt.tensor(name), t.layout != .vector else { throw WilKEError.missingTensor(name) }
        _ = try addStep(t, layer: layer, u: left, v: right, rank: 1, scale: 1, edits: [record])
        try loaded.model.addMLPOutputTerm(layer: layer, left: left, right: right, rank: 1)
    }

    /// Records one step on `t` (read from its last result, else the checkpoint): the exact result bytes
    /// and hash chain `wilke apply` checks, shared by new edits and replayed ones. The engine gets the
    /// step as a low-rank term (the callers), never these bytes.
    private func addStep(_ t: CheckpointTensor, layer: Int, u: [Float], v: [Float], rank: Int, scale: Float,
                         edits: [EditRecord]) throws -> TensorBytes {
        let base = current[t.name] ?? loaded.checkpoint.tensorBytes(t)
        let result = try builder.add(tensor: t.name, layout: t.stepLayout, base: base, u: u, v: v, rank: rank, scale: scale,
                                     promoteTo: .f32, edits: edits)
        current[t.name] = result
        return result
    }

    /// Π_t p(y_t | prompt, y_<t), teacher-forced.
    public func targetProbability(_ prompt: [Int], _ target: [Int]) throws -> Double {
        let seq = prompt + target.dropLast()
        let at = (0..<target.count).map { TokenPosition(row: 0, pos: prompt.count - 1 + $0) }
        let logits = try loaded.model.forward(ForwardBatch(sequences: [seq], logitsAt: at)).logits
        var logp = 0.0
        for (row, y) in zip(logits, target) { logp += Double(RomeLoss.logSoftmax(row)[y]) }
        return exp(logp)
    }

    /// Whether greedy decoding after the prompt reproduces `target` exactly (teacher-forced argmax).
    public func greedyMatches(_ prompt: [Int], _ target: [Int]) throws -> Bool {
        let seq = prompt + target.dropLast()
        let at = (0..<target.count).map { TokenPosition(row: 0, pos: prompt.count - 1 + $0) }
        let logits = try loaded.model.forward(ForwardBatch(sequences: [seq], logitsAt: at)).logits
        return zip(logits, target).allSatisfy { row, y in row.indices.max { row[$0] < row[$1] } == y }
    }
}

extension Editor {
    /// Re-applies the steps of a patch this editor's model got from an earlier run (the evaluation's
    /// resume): the same builder calls reproduce byte-identical steps, so the patch continues as if the
    /// run had never stopped, and the model gets the exact weights. Each step's result hash is checked.
    /// With `--preserve null-space` each replayed edit's keys join the accumulator as they did in the run
    /// (read from the model right after the edit's steps, as `edit` does). `progress(done, total)` follows
    /// each step: a long run's replay takes minutes when every edit's keys are recomputed.
    public func replay(_ patch: Patch, progress: ((_ done: Int, _ total: Int) -> Void)? = nil) throws {
        let ckpt = loaded.checkpoint
        // The keys are read with the templates of the unedited model, sampled before the first step.
        if hyperparameters.preserve == .nullSpace {
            _ = try contextTemplates()
            if patch.steps.contains(where: { $0.edits.first?.method == EditMethod.memit.rawValue }) { _ = try memitContextTemplates() }
        }
        var group: [Int] = []
        for (i, step) in patch.steps.enumerated() {
            let parts = step.tensor.split(separator: ".")
            guard parts.count == 4, parts[0] == "blk", let layer = Int(parts[1]), parts[2] == "ffn_down",
                  let t = ckpt.tensor(step.tensor), t.layout != .vector else {
                throw WilKEError.missingTensor(step.tensor)
            }
            let result = try addStep(t, layer: layer, u: step.u, v: step.v, rank: step.rank, scale: step.scale, edits: step.edits)
            guard result.sha256 == step.resultSHA256 else {
                throw WilKEError.invalidRequest("step \(i + 1) of the saved patch does not reproduce on this model (\(step.tensor))")
            }
            // The step's factors as `StepFactors` reads them (Float(u·scale), v), the term `apply` added.
            // (The result hash matched, so the step's own base hash names the bytes it continued from.)
            guard let term = try StepFactors.term(of: [step], dtype: step.dtype, rows: result.rows, cols: result.cols,
                                                  layout: t.stepLayout, sha256: step.baseSHA256) else {
                throw WilKEError.invalidRequest("step \(i + 1) of the saved patch is not an edit this engine makes (\(step.tensor))")
            }
            try loaded.model.addMLPOutputTerm(layer: layer, left: term.a, right: term.b, rank: term.rank)
            // One MEMIT edit is consecutive "memit" steps of one request; every other edit is one step.
            group.append(layer)
            let next = i + 1 < patch.steps.count ? patch.steps[i + 1].edits.first : nil
            if let e = step.edits.first, !(e.method == EditMethod.memit.rawValue && next?.method == e.method && next?.requests == e.requests) {
                if let r = e.requests.first {
                    try preserveKeys(EditRequest(prompt: r.prompt, subject: r.subject, targetNew: r.targetNew, targetTrue: r.targetTrue),
                                     layers: group, memit: e.method == EditMethod.memit.rawValue)
                }
                group = []
            }
            progress?(i + 1, patch.steps.count)
        }
    }

    /// Adds the request's keys at `layers`, read from the model as it now is, to the accumulator (only
    /// with `--preserve null-space`): ROME's template-averaged k̄, or MEMIT's k̄ of its own templates, as
    /// AlphaEdit recomputes them after the whole update.
    func preserveKeys(_ request: EditRequest, layers: [Int], memit: Bool) throws {
        guard hyperparameters.preserve == .nullSpace, !layers.isEmpty else { return }
        let templates = memit ? try memitContextTemplates() : try contextTemplates()
        let inputs = try RomeInputs(request: request, templates: templates, tokenizer: loaded.tokenizer)
        if memit {
            let groups = ContextTemplates.groupSizes(hyperparameters.memitTemplateLengths)
            for l in layers {
                try statistics.preserve(try loaded.model.memitKeys(inputs, layer: l, groups: groups, zLayer: l).key, layer: l)
            }
        } else {
            let keys = try loaded.model.subjectKeys(inputs, layers: layers)
            for l in layers { if let k = keys[l] { try statistics.preserve(k.mean, layer: l) } }
        }
    }

    /// NAS's anchor ν_l for `algorithm` (nil without `--norm-anchor`): the trimmed mean ‖v*‖ of the first
    /// `anchorReferences` of `anchorRequests`, each optimized at `layer` on the UNEDITED model (this
    /// editor's model before its first edit, else a second, unpatched view of the checkpoint) and never
    /// applied. Computed once per layer and template set.
    func anchor(layer: Int, algorithm: EditAlgorithm) throws -> Float? {
        let hp = hyperparameters
        guard hp.normAnchor else { return nil }
        let memit = algorithm.usesMemitTemplates
        let id = "\(memit ? "memit" : "rome")-\(layer)"
        if let a = anchors[id] { return a }
        let refs = anchorRequests.prefix(max(1, hp.anchorReferences))
        guard !refs.isEmpty else { throw WilKEError.invalidRequest("--norm-anchor needs reference facts (none were given)") }
        let model: TransformerModel
        if current.isEmpty {
            model = loaded.model
        } else {
            if pristine == nil { pristine = try TransformerModel(config: loaded.config, weights: CheckpointWeights(loaded.checkpoint)) }
            model = pristine!
        }
        let templates = memit ? try memitContextTemplates() : try contextTemplates()
        let norms = try refs.map { r in
            try model.valueNorm(try RomeInputs(request: r, templates: templates, tokenizer: loaded.tokenizer), layer: layer, hp,
                                method: memit ? .memit : .rome)
        }
        guard let mean = NormAnchor.trimmedMean(norms), mean > 0, mean.isFinite else {
            throw WilKEError.invalidRequest("the reference edits give no usable norm anchor at layer \(layer)")
        }
        anchors[id] = Float(mean)
        return Float(mean)
    }
}
