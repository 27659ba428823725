import ArgumentParser
import Foundation
import Formats
import Patch

extension RootCommand {
    struct Rebase: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Re-target a patch to another form of the same model (GGUF <-> HF directory, any float dtype).",
            discussion: """
                The steps' logical factors, scales and edit records are rebuilt on the new base's bytes, so the
                new patch has that base's tensor names, hashes, layouts and residues, and reverts byte-exactly
                there; no new edit and no key statistics are needed. Refused when the new base does not hold the
                same weights: per element of each touched tensor, |W_onto - W_base| (dequantized) may not exceed
                the two bases' rounding (half an ulp of a float type; half a quantized block's step, estimated as
                (max - min) / (2^bits - 1) / 2 of its values). --promote picks the type a quantized tensor
                becomes (rebasing onto the same model with --promote only changes that).

                  wilke rebase eiffel.wpatch --base SmolLM2-135M-Instruct.Q4_1.gguf --onto smollm2-bf16 -o eiffel-bf16.wpatch
                  wilke rebase eiffel.wpatch --base model.gguf --onto model.gguf --promote f16 -o eiffel-f16.wpatch
                """)

        @Argument(help: "Patch (.wpatch).")
        var patch: String

        @Option(name: .long, help: "The model the patch was made for (its hashes are checked).")
        var base: String

        @Option(name: .long, help: "The model to re-target it to.")
        var onto: String

        @Option(name: .shortAndLong, help: "Output .wpatch.")
        var output: String

        @Option(name: .long, help: "Float type a quantized tensor of the new base becomes: f32, f16 or bf16 (default: as in the patch).")
        var promote: FloatDType?

        @Flag(name: .long, help: "Replace an existing output.")
        var force = false

        func run() throws {
            ignoreFileSizeSignal()
            let p = try readPatch(patch)
            let src = try naming(base) { try Checkpoint.open(base) }
            let dst = try naming(onto) { try Checkpoint.open(onto) }
            let (q, comparisons, dropped) = try naming(onto) { try PatchRebase.rebase(p, from: src, onto: dst, promoteTo: promote?.dtype) }
            try writePatch(q, to: output, overwrite: force)
            for c in comparisons {
                print(String(format: "%@: max |difference| %.3g (%.2f of the bases' rounding)", c.tensor, c.maxDifference, c.worstRatio))
            }
            if dropped > 0 { print("dropped forward residues on \(dropped) elements (exact fix-ups of the old base's bytes)") }
            print("rebased \(short(p.id)) (\(p.base.format)) onto \(onto) (\(q.base.format)) as \(short(q.id)): \(q.steps.count) step\(q.steps.count == 1 ? "" : "s")")
            print("wrote \(output)")
        }
    }
}
