import ArgumentParser
import Foundation
import Formats
import WilKE

extension RootCommand {
    struct Stats: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Compute (or reuse) the key second moments C = E[k kᵀ] that ROME/WilKE edits solve against.",
            discussion: """
                All requested layers are computed in one forward pass over the corpus, from a user corpus or, by
                default, from text the model samples itself (fixed seed). Results are cached per model
                fingerprint, layer, corpus, token budget and max length under $WILKE_CACHE/stats (default
                ~/.cache/wilke/stats) and reused by `edit`; a corrupt or truncated cache file is recomputed.

                  wilke stats model.gguf --layers 0-14
                  wilke stats model.gguf --layers 3,5,8-10 --corpus wiki.jsonl --tokens 20000 --json
                """)

        @Argument(help: "Checkpoint: .gguf, .safetensors, or a Hugging Face directory.")
        var model: String

        @Option(help: "Layers: ranges and lists such as 0-14 or 3,5,8-10 (default: every layer).")
        var layers: String?

        @Option(help: "Corpus: .txt (documents separated by blank lines) or .jsonl (a \"text\" field per line). Default: text sampled from the model.")
        var corpus: String?

        @Option(help: "Token budget (default: 10·d_ff rounded up to a multiple of 1024).")
        var tokens: Int?

        @Option(name: .customLong("max-length"), help: "Tokens per document at most.")
        var maxLength = 256

        @Option(help: "Seed of the sampled corpus.")
        var seed: UInt64 = 0

        @Option(name: .customLong("batch-tokens"), help: "Tokens per forward pass.")
        var batchTokens = 2048

        @Flag(help: "Print JSON.")
        var json = false

        @Flag(help: "Recompute even when a valid cache entry exists.")
        var force = false

        func run() throws {
            let t0 = Date()
            let (net, tokenizer, fingerprint) = try naming(model) { try loadForStats(model) }
            let cfg = net.config
            var options = StatsOptions(layers: try layers.map { try parseLayers($0, count: cfg.nLayer) } ?? Array(0..<cfg.nLayer))
            options.corpus = corpus.map { .file($0) } ?? .sampled(seed: seed)
            options.tokens = tokens
            options.maxLength = maxLength
            options.batchTokens = batchTokens
            options.force = force
            guard (tokens ?? 1) > 0, maxLength > 0, batchTokens > 0 else {
                throw CLIError("--tokens, --max-length and --batch-tokens must be positive")
            }
            let loaded = Date()

            var bars: [StatsProgress.Phase: ProgressBar] = [:]
            var firstAt: [StatsProgress.Phase: Date] = [:], lastAt: [StatsProgress.Phase: Date] = [:]
            var collected = 0, sampled = 0
            let results = try KeyStatistics.compute(model: net, tokenizer: tokenizer, fingerprint: fingerprint,
                                                    options: options, cache: StatsCache()) { p in
                let now = Date()
                if firstAt[p.phase] == nil { firstAt[p.phase] = now }
                lastAt[p.phase] = now
                if p.phase == .collecting { collected = p.total } else { sampled = p.done }
                let label = p.phase == .sampling ? "sampling corpus" : "key statistics"
                let bar = bars[p.phase] ?? ProgressBar(label)
                bars[p.phase] = bar
                bar.update(p.done, p.total)
            }
            let done = Date()
            // Sampling runs from the end of loading to its last callback; the statistics pass from its first
            // callback (tokens 0) to the end of the last write.
            let sampleSeconds = lastAt[.sampling].map { $0.timeIntervalSince(loaded) }
            let collectSeconds = firstAt[.collecting].map { done.timeIntervalSince($0) }
            let report = StatsReport(
                model: model, layers: results, loadSeconds: loaded.timeIntervalSince(t0),
                sampledTokens: sampled, sampleSeconds: sampleSeconds, collectedTokens: collected,
                collectSeconds: collectSeconds, layersComputed: results.filter { !$0.cached }.count)
            print(json ? try report.json() : report.text())
        }
    }
}

/// "0-14", "3,5,8-10": sorted distinct layers, each checked against the model.
func parseLayers(_ spec: String, count: Int) throws -> [Int] {
    var out = Set<Int>()
    for part in spec.split(separator: ",") {
        let bounds = part.split(separator: "-", omittingEmptySubsequences: false).map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard (1...2).contains(bounds.count), let lo = bounds.first!, let hi = bounds.last!, lo <= hi else {
            throw CLIError("--layers: `\(part)` is not a layer or a range like 0-14")
        }
        guard lo >= 0, hi < count else { throw CLIError("--layers: \(part) is outside the model's layers 0-\(count - 1)") }
        out.formUnion(lo...hi)
    }
    guard !out.isEmpty else { throw CLIError("--layers is empty") }
    return out.sorted()
}

struct StatsReport {
    let model: String
    let layers: [LayerStats]
    let loadSeconds: Double
    let sampledTokens: Int
    let sampleSeconds: Double?
    let collectedTokens: Int
    let collectSeconds: Double?
    let layersComputed: Int

    var collectRate: Double? { collectSeconds.map { $0 > 0 ? Double(collectedTokens) / $0 : 0 } }
    var sampleRate: Double? { sampleSeconds.map { $0 > 0 ? Double(sampledTokens) / $0 : 0 } }

    func text() -> String {
        var lines: [String] = []
        for l in layers {
            let c = l.covariance
            var line = String(format: "layer %2d  %@  %d tokens  trace %.4g  cond ≥ %.3g", l.key.layer,
                              l.cached ? "cached  " : "computed", c.count, c.trace, c.conditionEstimate)
            if c.ridge > 0 { line += String(format: "  ridge %.3g", c.ridge) }
            lines.append(line + "  " + l.path)
            if let why = l.rejected { lines.append("          (the previous cache file was rejected: \(why))") }
        }
        if let s = sampleSeconds, let r = sampleRate {
            lines.append(String(format: "sampled %d tokens in %.1fs (%.0f tokens/s)", sampledTokens, s, r))
        }
        if let s = collectSeconds, let r = collectRate {
            lines.append(String(format: "statistics of %d layers over %d tokens in %.1fs (%.0f tokens/s)",
                                layersComputed, collectedTokens, s, r))
        }
        return lines.joined(separator: "\n")
    }

    func json() throws -> String {
        var root: [String: Any] = [
            "model": model, "load_seconds": loadSeconds,
            "layers": layers.map { l -> [String: Any] in
                let c = l.covariance
                var o: [String: Any] = ["layer": l.key.layer, "path": l.path, "cached": l.cached, "tokens": c.count,
                                        "dim": c.dim, "trace": c.trace,
                                        "condition_estimate": c.conditionEstimate.isFinite ? c.conditionEstimate : NSNull(),
                                        "ridge": c.ridge, "fingerprint": l.key.fingerprint, "corpus": l.key.corpus,
                                        "max_length": l.key.maxLength, "token_budget": l.key.tokens]
                if let why = l.rejected { o["rejected"] = why }
                return o
            },
        ]
        if let s = sampleSeconds { root["sampling"] = ["tokens": sampledTokens, "seconds": s, "tokens_per_second": sampleRate ?? 0] }
        if let s = collectSeconds {
            root["statistics"] = ["tokens": collectedTokens, "layers": layersComputed, "seconds": s,
                                  "tokens_per_second": collectRate ?? 0]
        }
        let data = try JSONSerialization.data(withJSONObject: root, options: [.sortedKeys, .prettyPrinted])
        return String(decoding: data, as: UTF8.self)
    }
}

private func loadForStats(_ path: String) throws -> (TransformerModel, any Tokenizer, ModelFingerprint) {
    let loaded = try LoadedModel(path: path)
    return (loaded.model, loaded.tokenizer, ModelFingerprint(checkpoint: loaded.checkpoint, nLayer: loaded.config.nLayer))
}

