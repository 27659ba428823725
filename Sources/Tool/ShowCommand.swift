import ArgumentParser
import Foundation
import Formats
import Patch

extension RootCommand {
    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Summarize a patch: model, tensors, steps, edits and sizes.",
            discussion: """
                  wilke show edit.wpatch
                  wilke show edit.wpatch --json
                  wilke stack a.wpatch b.wpatch -o - | wilke show -

                The last line says how the patch ships as a LoRA adapter (`wilke export`), with the rank each
                tensor's adapter pair gets.
                """)

        @Argument(help: "Patch (.wpatch; - reads standard input).")
        var patch: String

        @Flag(name: .long, help: "Print JSON.")
        var json = false

        func run() throws {
            let p = try readPatch(patch)
            let size = patch == "-" ? ((try? p.encode().count) ?? 0) : ((try? FileManager.default.attributesOfItem(atPath: patch)[.size] as? Int) ?? 0)
            let norms = Dictionary(uniqueKeysWithValues: PatchDiff.compare(p, p).tensors.map { ($0.name, $0.normA) })
            if json {
                try printJSON(PatchJSON.patch(p, fileBytes: size, norms: norms))
                return
            }
            say("patch     \(p.id)")
            say("model     \(p.base.architecture) (\(p.base.format)), \(p.base.tensors.count) tensor\(p.base.tensors.count == 1 ? "" : "s")")
            say("size      \(size) bytes")
            for (k, v) in p.metadata.sorted(by: { $0.key < $1.key }) { say("meta      \(k) = \(v)") }
            say("steps:")
            for (n, s) in p.steps.enumerated() {
                let types = s.dtype == s.resultDType ? s.dtype.name : "\(s.dtype.name) → \(s.resultDType.name)"
                say("  \(n + 1). \(s.tensor) [\(s.rows), \(s.cols)] \(types), rank \(s.rank), scale \(s.scale)"
                      + String(format: ", ‖Δ‖ %.4g", PatchDiff.compare(Patch(base: p.base, steps: [s]), Patch(base: p.base, steps: [s])).tensors.first?.normA ?? 0))
                say("     residue \(s.residue.count) \(s.residue.kind.rawValue) (\(s.residue.bytes.count) bytes)"
                      + (s.forwardResidue.count > 0 ? ", forward residue \(s.forwardResidue.count) (\(s.forwardResidue.bytes.count) bytes)" : ""))
                for e in s.edits {
                    for r in e.requests {
                        say("     \(e.method) layer \(e.layer): \"\(r.prompt.replacingOccurrences(of: "{}", with: r.subject))\" → \(r.targetNew)"
                              + (r.targetTrue.map { " (was \($0))" } ?? ""))
                    }
                    if let options = editOptions(e.hyperParameters) { say("     " + options) }
                }
            }
            if !norms.isEmpty {
                say("per tensor ‖Δ‖_F: " + norms.sorted { $0.key < $1.key }.map { "\($0.key) \(String(format: "%.4g", $0.value))" }.joined(separator: ", "))
            }
            say(exportHint(p, patchPath: patch))  // tensor names come from the file: escaped
        }
    }
}

/// JSON views of patches shared by show and diff.
enum PatchJSON {
    static func patch(_ p: Patch, fileBytes: Int, norms: [String: Double]) -> [String: Any] {
        [
            "id": p.id, "file_bytes": fileBytes, "architecture": p.base.architecture, "format": p.base.format,
            "metadata": p.metadata,
            "tensors": p.base.tensors.map { t -> [String: Any] in
                ["name": t.name, "dtype": t.dtype.name, "shape": [t.rows, t.cols], "sha256": t.sha256, "norm": norms[t.name] ?? 0]
            },
            "steps": p.steps.map { s -> [String: Any] in
                [
                    "tensor": s.tensor, "dtype": s.dtype.name, "result_dtype": s.resultDType.name, "shape": [s.rows, s.cols],
                    "rank": s.rank, "scale": Double(s.scale), "base_sha256": s.baseSHA256, "result_sha256": s.resultSHA256,
                    "residue": ["kind": s.residue.kind.rawValue, "count": s.residue.count, "bytes": s.residue.bytes.count],
                    "forward_residue": ["count": s.forwardResidue.count, "bytes": s.forwardResidue.bytes.count],
                    "edits": s.edits.map { e -> [String: Any] in
                        ["method": e.method, "layer": e.layer, "hyper_parameters": e.hyperParameters,
                         "requests": e.requests.map(request)]
                    },
                ]
            },
        ]
    }

    static func request(_ r: RecordedRequest) -> [String: Any] {
        var d: [String: Any] = ["prompt": r.prompt, "subject": r.subject, "target_new": r.targetNew]
        if let t = r.targetTrue { d["target_true"] = t }
        return d
    }
}

/// What beyond the method produced an edit (`--preserve`, `--norm-anchor`), from its record; nil for a
/// plain edit (values come from the file: `say` escapes them).
func editOptions(_ hp: [String: String]) -> String? {
    var parts: [String] = []
    if let p = hp["preserve"] {
        var s = "preserve \(p)"
        let details = [("threshold", hp["null_space_threshold"]), ("L2", hp["null_space_l2"]), ("rank", hp["null_space_rank"]),
                       ("earlier keys", hp["preserved_keys"])].compactMap { k, v in v.map { "\(k) \($0)" } }
        if !details.isEmpty { s += " (" + details.joined(separator: ", ") + ")" }
        parts.append(s)
    }
    if hp["norm_anchor"] != nil {
        var s = "norm anchor"
        if let a = hp["anchor_norm"], let v = hp["v_star_norm"] { s += " ‖v*‖ \(v) → \(a)" }
        if let n = hp["anchor_references"] { s += " (\(n) reference facts)" }
        parts.append(s)
    }
    return parts.isEmpty ? nil : "options: " + parts.joined(separator: "; ")
}

/// One line on shipping the patch as a LoRA adapter: per tensor, the rank of its pair.
func exportHint(_ p: Patch, patchPath: String) -> String {
    var rank: [String: Int] = [:], order: [String] = []
    for s in p.steps {
        if rank[s.tensor] == nil { order.append(s.tensor) }
        rank[s.tensor, default: 0] += s.rank
    }
    if p.steps.contains(where: { $0.rank == 0 }) { return "export    not as a LoRA: a rank-0 step carries its change in residues only" }
    let pairs = order.map { "\($0) rank \(rank[$0]!)" }.joined(separator: ", ")
    let base = p.base.format == "gguf" ? "MODEL.gguf" : "MODEL"
    return "export    as a LoRA (\(pairs)): wilke export \(patchPath) --base \(base) -o edit-lora.gguf (llama.cpp, Ollama) or -o edit-peft (PEFT)"
}
