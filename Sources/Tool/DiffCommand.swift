import ArgumentParser
import Foundation
import Formats
import Patch

extension RootCommand {
    struct Diff: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Compare two patches or two checkpoints; extract a patch from two checkpoints.",
            discussion: """
                Two patches: tensors touched, edits added / removed / changed, conflicting facts, and per tensor
                ‖ΔA − ΔB‖_F and the cosine of the updates (from the factors' Gram matrices, never dense).
                Two checkpoints: the changed tensors with max |Δ|, relative Frobenius difference and numerical
                rank. With -o, writes the patch that turns A into B: low-rank factors where the difference has
                low rank, else a dense delta, always byte-exact on apply and revert.

                  wilke diff a.wpatch b.wpatch
                  wilke diff model.gguf edited.gguf -o extracted.wpatch
                """)

        @Argument(help: "First patch or checkpoint.")
        var a: String

        @Argument(help: "Second patch or checkpoint.")
        var b: String

        @Option(name: .shortAndLong, help: "Extract the patch A → B (checkpoints only).")
        var output: String?

        @Option(name: .long, help: "Largest rank of an extracted step.")
        var maxRank = 16

        @Flag(name: .long, help: "Replace an existing output.")
        var force = false

        @Flag(name: .long, help: "Print JSON.")
        var json = false

        func validate() throws {
            guard (0...4096).contains(maxRank) else { throw ValidationError("--max-rank must be in 0...4096") }
        }

        func run() throws {
            ignoreFileSizeSignal()
            let pa = looksLikePatch(a), pb = looksLikePatch(b)
            if pa != pb { throw CLIError("diff compares two patches or two checkpoints; \(pa ? a : b) is a patch and \(pa ? b : a) is not") }
            if pa {
                if output != nil { throw CLIError("-o extracts a patch from two checkpoints, not from two patches") }
                try comparePatches(try readPatch(a), try readPatch(b))
                return
            }
            let ca = try naming(a) { try Checkpoint.open(a) }
            let cb = try naming(b) { try Checkpoint.open(b) }
            if let output {
                let bar = ProgressBar("extract")
                let p = try naming(b) { try CheckpointDiff.extract(from: ca, to: cb, maxRank: maxRank, progress: bar.update) }
                try writePatch(p, to: output, overwrite: force)
                let size = (try? FileManager.default.attributesOfItem(atPath: output)[.size] as? Int) ?? 0
                if json {
                    try printJSON(["output": output, "id": p.id, "bytes": size,
                                   "steps": p.steps.map { ["tensor": $0.tensor, "rank": $0.rank, "forward_residue": $0.forwardResidue.count] }])
                } else {
                    for s in p.steps { say("\(s.tensor): rank \(s.rank), \(s.forwardResidue.count) forward fix-ups, \(s.residue.count) revert fix-ups") }
                    say("wrote \(output) (\(short(p.id)), \(p.steps.count) step\(p.steps.count == 1 ? "" : "s"), \(size) bytes)")
                }
                return
            }
            let c = try CheckpointDiff.compare(ca, cb)
            if json {
                try printJSON(["unchanged": c.unchanged, "only_in_a": c.onlyInA, "only_in_b": c.onlyInB,
                               "changed": c.changed.map { d -> [String: Any] in
                                   var o: [String: Any] = ["name": d.name, "dtype_a": d.dtypeA, "dtype_b": d.dtypeB, "shape_a": d.shapeA, "shape_b": d.shapeB]
                                   if let x = d.changedElements { o["changed_elements"] = x }
                                   if let x = d.maxAbs { o["max_abs"] = x }
                                   if let x = d.relativeFrobenius { o["relative_frobenius"] = x.isFinite ? x : -1 }
                                   if let x = d.rank { o["rank"] = x; o["rank_is_lower_bound"] = d.rankIsLowerBound }
                                   return o
                               }])
                return
            }
            say("\(c.changed.count) changed, \(c.unchanged) unchanged, \(c.onlyInA.count) only in A, \(c.onlyInB.count) only in B")
            for d in c.changed {
                var line = "  \(d.name): "
                if d.dtypeA != d.dtypeB { line += "\(d.dtypeA) → \(d.dtypeB), " }
                if d.shapeA != d.shapeB { line += "shape \(d.shapeA) → \(d.shapeB)"; say(line); continue }
                line += String(format: "max |Δ| %.4g, ‖Δ‖/‖A‖ %.4g", d.maxAbs ?? 0, d.relativeFrobenius ?? 0)
                if let r = d.rank { line += ", rank \(d.rankIsLowerBound ? "≥" : "")\(r)" }
                if let n = d.changedElements { line += ", \(n) elements differ" }
                say(line)
            }
            for n in c.onlyInA { say("  only in A: \(n)") }
            for n in c.onlyInB { say("  only in B: \(n)") }
        }

        private func comparePatches(_ x: Patch, _ y: Patch) throws {
            let c = PatchDiff.compare(x, y)
            func entry(_ e: PatchComparison.EditEntry) -> [String: Any] {
                ["request": PatchJSON.request(e.request), "method": e.method, "layer": e.layer, "tensor": e.tensor]
            }
            if json {
                try printJSON([
                    "a": x.id, "b": y.id, "same_architecture": c.sameArchitecture, "base_mismatches": c.baseMismatches,
                    "tensors": c.tensors.map { t -> [String: Any] in
                        var o: [String: Any] = ["name": t.name, "steps_a": t.stepsA, "steps_b": t.stepsB, "norm_a": t.normA, "norm_b": t.normB]
                        if let d = t.differenceNorm { o["difference_norm"] = d }
                        if let cs = t.cosine { o["cosine"] = cs }
                        return o
                    },
                    "edits_added": c.editsAdded.map(entry), "edits_removed": c.editsRemoved.map(entry),
                    "edits_changed": c.editsChanged.map { ["before": entry($0.before), "after": entry($0.after)] },
                    "conflicts": c.conflicts.map { ["subject": $0.subject, "prompt": $0.prompt, "targets_a": $0.targetsA, "targets_b": $0.targetsB] },
                ])
                return
            }
            say("A \(short(x.id))  B \(short(y.id))" + (c.sameArchitecture ? "" : "  (different models)"))
            for m in c.baseMismatches { say("  base differs: \(m)") }
            for t in c.tensors {
                say("  \(t.name): steps \(t.stepsA)/\(t.stepsB), ‖ΔA‖ \(String(format: "%.4g", t.normA)), ‖ΔB‖ \(String(format: "%.4g", t.normB))"
                      + (t.differenceNorm.map { String(format: ", ‖ΔA−ΔB‖ %.4g", $0) } ?? "")
                      + (t.cosine.map { String(format: ", cos %.4f", $0) } ?? ""))
            }
            for e in c.editsAdded { say("  + \(e.request.subject): \(e.request.targetNew) (\(e.tensor))") }
            for e in c.editsRemoved { say("  - \(e.request.subject): \(e.request.targetNew) (\(e.tensor))") }
            for e in c.editsChanged { say("  ~ \(e.before.request.subject): \(e.before.request.targetNew) → \(e.after.request.targetNew)") }
            for f in c.conflicts { say("  ! conflict on \(f.subject) (\(f.prompt)): \(f.targetsA) vs \(f.targetsB)") }
        }
    }
}
