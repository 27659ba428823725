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
/// model as already edited) and records each as a patch step on the stored tensor bytes. The in-memory
/// weights are set from the patch's exact result bytes, so the model seen by the next edit is exactly
/// what `wilke apply` of the patch produces.
public final class Editor {
    public let loaded: LoadedModel
    public var hyperparameters: EditHyperparameters
    /// Solves C_l x = k for a layer (nil: no statistics, C = I).
    public let covariance: (Int) throws -> CovarianceSolve?
    public private(set) var templates: [String]?
    /// Layers WilKE's scan computes at once, each on one core. Above 1 the scan switches OpenBLAS to one
    /// thread for the whole process while it runs (see `TransformerModel.scan`), so only a caller that runs
    /// no other BLAS work at the same time (the `wilke` tool) should raise it, e.g. to `BLAS.threads`.
    /// Results do not depend on it.
    public var scanWorkers = 1
    /// MEMIT's own templates ("{}" + 5 of 10 tokens), sampled once like `templates`.
    public private(set) var memitTemplates: [String]?
    private var builder: PatchBuilder
    private var current: [String: TensorBytes] = [:]

    public init(_ loaded: LoadedModel, hyperparameters: EditHyperparameters,
                covariance: @escaping (Int) throws -> CovarianceSolve?) {
        self.loaded = loaded
        self.hyperparameters = hyperparameters
        self.covariance = covariance
        let format: String
        switch loaded.checkpoint.format {
        case .gguf: format = "gguf"
        case .safetensors, .huggingFaceDirectory: format = "safetensors"
        }
        builder = PatchBuilder(architecture: loaded.checkpoint.architecture ?? "unknown", format: format)
    }

    /// The context templates, sampled once from the model as it was before the first edit.
    public func contextTemplates() throws -> [String] {
        if let t = templates { return t }
        let t = try ContextTemplates.sample(loaded, lengths: hyperparameters.templateLengths, seed: hyperparameters.templateSeed)
        templates = t
        return t
    }

    /// MEMIT's context templates (`hyperparameters.memitTemplateLengths`), sampled once.
    public func memitContextTemplates() throws -> [String] {
        if let t = memitTemplates { return t }
        let t = try ContextTemplates.sample(loaded, lengths: hyperparameters.memitTemplateLengths, seed: hyperparameters.templateSeed)
        memitTemplates = t
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
        let start = Date()
        let templates = method == .memit ? try memitContextTemplates() : try contextTemplates()
        let inputs = try RomeInputs(request: request, templates: templates, tokenizer: loaded.tokenizer)
        let prompt = try loaded.encodePrompt(request.filledPrompt)
        let newBefore = try targetProbability(prompt, inputs.target)
        let oldIDs = request.targetTrue.map { loaded.tokenizer.encode($0.hasPrefix(" ") ? $0 : " " + $0, addSpecial: false) }
        let oldBefore = try oldIDs.map { try targetProbability(prompt, $0) }
        if !allowKnownTarget, try greedyMatches(prompt, inputs.target) {
            throw WilKEError.invalidRequest("the model already answers \"\(request.targetNew)\" to \"\(request.filledPrompt)\"")
        }
        var scan: ScanMode?, estimates: [Int: Float]?
        let (layer, sizes, opt): (Int, [Int: Float], DeltaOptimization)
        if method == .memit {
            (layer, sizes, opt) = try memitEdit(request, inputs, layer: fixed, progress: progress)
        } else if method == .wilke, fixed == nil {
            let w = try wilkeEdit(request, inputs, progress: progress)
            (layer, sizes, opt, scan, estimates) = (w.layer, w.sizes, w.optimization, hyperparameters.scanMode, w.estimates)
        } else {
            (layer, sizes, opt) = try romeEdit(request, inputs, method: method, layer: fixed ?? hyperparameters.romeLayer,
                                             progress: progress)
        }
        return EditReport(request: request, method: method, layer: layer, relativeSizes: sizes, scan: scan, estimates: estimates,
                          losses: opt.losses.map(\.total), adamSteps: opt.adamSteps,
                          newBefore: newBefore, newAfter: try targetProbability(prompt, inputs.target),
                          oldBefore: oldBefore, oldAfter: try oldIDs.map { try targetProbability(prompt, $0) },
                          seconds: Date().timeIntervalSince(start))
    }

    /// ROME at one layer (also WilKE's roll-back at its earlier choice); applied. Returns (layer, LA, the
    /// δ optimization).
    private func romeEdit(_ request: EditRequest, _ inputs: RomeInputs, method: EditMethod, layer: Int,
                          progress: ((String) -> Void)?) throws -> (Int, [Int: Float], DeltaOptimization) {
        guard layer >= 0 && layer < loaded.model.config.nLayer else { throw WilKEError.invalidLayer(layer) }
        let up = try loaded.model.rankOneUpdate(inputs, layer: layer, hyperparameters, covariance: try covariance(layer))
        progress?(String(format: "layer %2d: LA %.5f, loss %.3f -> %.3f in %d steps", layer, up.relativeSize,
                         up.optimization.losses.first?.total ?? 0, up.optimization.losses.last?.total ?? 0, up.optimization.adamSteps))
        let record = EditRecord(requests: [recorded(request)], method: method.rawValue, layer: layer,
                                scores: [layer: up.relativeSize], hyperParameters: hyperparameters.record)
        try apply(layer: layer, left: up.r, right: up.u, record: record)
        return (layer, [layer: up.relativeSize], up.optimization)
    }

    /// WilKE (ALGORITHM.md §1.1): one shared δ = 0 pass gives LA_est for every scanned layer; the full
    /// scan then optimizes every layer, the fast scan only the `scanTop` with the smallest estimates;
    /// the exact argmin among the optimized layers is applied.
    private func wilkeEdit(_ request: EditRequest, _ inputs: RomeInputs, progress: ((String) -> Void)?) throws
        -> (layer: Int, sizes: [Int: Float], optimization: DeltaOptimization, estimates: [Int: Float]) {
        let model = loaded.model, hp = hyperparameters
        let layers = hp.scanLayers
        for l in layers where l < 0 || l >= model.config.nLayer { throw WilKEError.invalidLayer(l) }
        guard !layers.isEmpty else { throw WilKEError.invalidRequest("no layer to edit") }
        var solvers: [Int: CovarianceSolve?] = [:]
        for l in layers { solvers[l] = try covariance(l) }
        let shared = try model.sharedScanPass(inputs, layers: layers, hp)
        let est = try model.layerEstimates(shared, layers: layers, hp, covariance: layers.map { solvers[$0]! })
        let optimized = hp.scanMode == .fast ? LayerEstimate.top(est, count: hp.scanTop) : layers
        if hp.scanMode == .fast {
            progress?("estimates: " + est.sorted { $0.estimate < $1.estimate }.prefix(5)
                .map { String(format: "layer %d %.3g", $0.layer, $0.estimate) }.joined(separator: ", ")
                + "; optimizing layers " + optimized.map(String.init).joined(separator: ", "))
        }
        let ups = try model.scan(inputs, layers: optimized, hp, covariance: optimized.map { solvers[$0]! },
                                 workers: scanWorkers, shared: shared) { up, n in
            progress?(String(format: "layer %2d (%d/%d): LA %.5f, loss %.3f -> %.3f in %d steps", up.layer, n, optimized.count,
                             up.relativeSize, up.optimization.losses.first?.total ?? 0, up.optimization.losses.last?.total ?? 0,
                             up.optimization.adamSteps))
        }
        var best: RankOneUpdate?
        var sizes: [Int: Float] = [:]
        for up in ups {
            sizes[up.layer] = up.relativeSize
            // First minimum wins, as list.index(min(...)) in the reference.
            if best == nil || up.relativeSize < best!.relativeSize { best = up }
        }
        guard let chosen = best else { throw WilKEError.invalidRequest("no layer to edit") }
        var estimates: [Int: Float] = [:]
        for e in est where e.estimate.isFinite { estimates[e.layer] = e.estimate }
        let record = EditRecord(requests: [recorded(request)], method: EditMethod.wilke.rawValue, layer: chosen.layer,
                                scores: sizes, estimates: estimates, hyperParameters: hp.wilkeRecord)
        try apply(layer: chosen.layer, left: chosen.r, right: chosen.u, record: record)
        return (chosen.layer, sizes, chosen.optimization, estimates)
    }

    private func recorded(_ r: EditRequest) -> RecordedRequest {
        RecordedRequest(prompt: r.prompt, subject: r.subject, targetNew: r.targetNew, targetTrue: r.targetTrue)
    }

    /// Records W_l += left ⊗ right (ROME: r ûᵀ) as a patch step on the stored tensor and loads the exact
    /// result into the model. - left: [C]; right: [F]
    func apply(layer: Int, left: [Float], right: [Float], record: EditRecord) throws {
        let ckpt = loaded.checkpoint
        let name = "blk.\(layer).ffn_down.weight"
        guard let t = ckpt.tensor(name), t.layout != .vector else { throw WilKEError.missingTensor(name) }
        let base = current[t.name] ?? ckpt.tensorBytes(t)
        let result = try builder.add(tensor: t.name, layout: t.stepLayout, base: base, u: left, v: right, rank: 1, scale: 1,
                                     promoteTo: .f32, edits: [record])
        current[t.name] = result
        try loaded.model.setMLPOutputWeight(layer: layer, Weight(t, result: result))
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
    public func replay(_ patch: Patch) throws {
        let ckpt = loaded.checkpoint
        for (i, step) in patch.steps.enumerated() {
            let parts = step.tensor.split(separator: ".")
            guard parts.count == 4, parts[0] == "blk", let layer = Int(parts[1]), parts[2] == "ffn_down",
                  let t = ckpt.tensor(step.tensor), t.layout != .vector else {
                throw WilKEError.missingTensor(step.tensor)
            }
            let base = current[t.name] ?? ckpt.tensorBytes(t)
            let result = try builder.add(tensor: t.name, layout: t.stepLayout, base: base, u: step.u, v: step.v,
                                         rank: step.rank, scale: step.scale, promoteTo: .f32, edits: step.edits)
            guard result.sha256 == step.resultSHA256 else {
                throw WilKEError.invalidRequest("step \(i + 1) of the saved patch does not reproduce on this model (\(step.tensor))")
            }
            current[t.name] = result
            try loaded.model.setMLPOutputWeight(layer: layer, Weight(t, result: result))
        }
    }
}
