import ArgumentParser
import Foundation
import Formats
import Patch
import WilKE

extension RootCommand {
    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Export a patch as a LoRA adapter that llama.cpp, Ollama or PEFT load next to the unchanged base.",
            discussion: """
                Per edited tensor, the factors of all its steps in patch order become one LoRA pair:
                lora_b [out, r] = the steps' scaled U side by side, lora_a [r, in] = their V side by side,
                alpha = r (scale 1). In f32 the adapter is exact: B A is the patch's update. --dtype f16 or bf16
                rounds the factors; the largest resulting error of any weight is printed.
                llama-lora (a .gguf OUT): llama.cpp's adapter GGUF (`llama-cli -m BASE.gguf --lora OUT`, Ollama
                `ADAPTER OUT`), all pairs zero-padded to the largest rank since alpha is one per file.
                peft (a directory OUT): adapter_config.json + adapter_model.safetensors for
                `PeftModel.from_pretrained(model, OUT)`, rank_pattern / alpha_pattern where ranks differ.
                Not carried: the revert residue (it only restores a quantized tensor's bytes) and forward
                residues (exact fix-ups of extracted or squashed steps). To show what that costs, export runs
                the base with the adapter and with the patch on the patch's own prompts and prints the largest
                logit difference (skip with --no-check). BASE may be another form of the model (the HF
                directory `wilke convert` makes of a GGUF): factors are logical, only shapes are checked then.

                  wilke export eiffel.wpatch --base SmolLM2-135M-Instruct.Q4_1.gguf -o eiffel-lora.gguf
                  wilke export eiffel.wpatch --base smollm2-hf -o eiffel-peft --format peft --dtype bf16
                """)

        enum Format: String, ExpressibleByArgument, CaseIterable {
            case llamaLoRA = "llama-lora", peft
        }

        @Argument(help: "Patch (.wpatch).")
        var patch: String

        @Option(name: .long, help: "The model the patch is for (.gguf, .safetensors or a Hugging Face directory).")
        var base: String

        @Option(name: .shortAndLong, help: "Output: a .gguf file (llama-lora) or a directory (peft).")
        var output: String

        @Option(name: .long, help: "llama-lora or peft (default: llama-lora for a .gguf output, else peft).")
        var format: Format?

        @Option(name: .long, help: "Type of the factor tensors: f32 (exact), f16 or bf16.")
        var dtype: FloatDType = .f32

        @Flag(name: .long, help: "Skip the logit comparison of adapter and patch.")
        var noCheck = false

        @Flag(name: .long, help: "Replace an existing output.")
        var force = false

        @Flag(name: .long, help: "Print JSON.")
        var json = false

        var resolvedFormat: Format { format ?? (output.lowercased().hasSuffix(".gguf") ? .llamaLoRA : .peft) }

        func run() throws {
            ignoreFileSizeSignal()
            let p = try readPatch(patch)
            let ckpt = try naming(base) { try Checkpoint.open(base) }
            let adapter = try naming(base) { try LoRAExport.adapter(for: p, base: ckpt) }
            let (rounded, deltaError) = adapter.rounded(to: dtype.dtype)
            // The comparison needs the patch to apply to this very base (same form, hashes checked).
            var check: AdapterCheck.Result?
            if !noCheck, p.base.format == ckpt.patchFormat {
                check = try naming(base) { try AdapterCheck.compare(base: ckpt, patch: p, adapter: rounded, prompts: AdapterCheck.prompts(of: p)) }
            }
            let format = resolvedFormat
            try naming(output) {
                switch format {
                case .llamaLoRA:
                    let arch = ckpt.gguf?.architecture ?? adapter.architecture
                    let hyper = ckpt.gguf?.metadata.filter { $0.key.hasPrefix(arch + ".") } ?? []
                    var a = adapter
                    a.architecture = arch
                    a.metadata["general.name"] = (ckpt.gguf?["general.name"]?.string).map { "\($0) + wilke edit" } ?? "wilke edit"
                    try LlamaLoRAFile.write(a, dtype: dtype.dtype, baseMetadata: hyper, rowPermutation: ckpt.ggufRowPermutation,
                                            to: output, overwrite: force)
                case .peft:
                    let arch = Architecture(name: adapter.architecture)
                    try PEFTAdapter.write(adapter, dtype: dtype.dtype, huggingFaceName: { name in arch.flatMap { TensorNames.huggingFace(canonical: name, architecture: $0) } },
                                          baseModel: absolute(base), to: output, overwrite: force)
                }
            }
            let residue = LoRAExport.forwardResidueElements(p)
            if json {
                var out: [String: Any] = [
                    "output": output, "format": format.rawValue, "dtype": dtype.rawValue, "patch": p.id,
                    "tensors": adapter.factors.map { ["tensor": $0.tensor, "rank": $0.rank, "shape": [$0.rows, $0.cols]] },
                    "max_weight_error": deltaError, "forward_residue_elements": residue,
                ]
                if let check { out["max_logit_difference"] = Double(check.maxLogitDifference); out["prompts"] = check.prompts }
                try printJSON(out)
                return
            }
            let ranks = adapter.factors.map { "\($0.tensor) rank \($0.rank)" }.joined(separator: ", ")
            print("exported \(short(p.id)) as a \(format == .llamaLoRA ? "llama.cpp LoRA GGUF" : "PEFT LoRA directory") (\(dtype.rawValue)): \(ranks)")
            print(dtype == .f32 ? "factors: exact (f32)" : String(format: "factors: rounded to %@, largest weight error %.3g", dtype.rawValue, deltaError))
            if let check {
                print(String(format: "max |logit difference| adapter vs patch: %.3g over %d prompt%@ (wilke's engine)",
                             check.maxLogitDifference, check.prompts, check.prompts == 1 ? "" : "s"))
            } else if !noCheck {
                print("logits not compared: " + (p.base.format == ckpt.patchFormat ? "the patch records no prompts" : "the patch is for a \(p.base.format) checkpoint, the base is \(ckpt.patchFormat)"))
            }
            if residue > 0 { print("not carried: forward residues on \(residue) elements (exact fix-ups; the adapter gives the factors' arithmetic there)") }
            if p.steps.contains(where: \.isPromotion) {
                print("not carried: the revert residue of promoted tensors (it restores quantized bytes; the runtime keeps the base unchanged)")
            }
            print("wrote \(output)")
        }
    }
}

func absolute(_ path: String) -> String {
    path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
}
