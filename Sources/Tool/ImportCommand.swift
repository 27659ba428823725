import ArgumentParser
import Foundation
import Formats
import Patch

extension RootCommand {
    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Turn a LoRA adapter (llama.cpp GGUF or PEFT directory) into a patch for a base model.",
            discussion: """
                Each adapted weight becomes one step of the adapter's rank r (U = lora_B, V = lora_Aᵀ, scale
                alpha / r), built on the base's bytes like an edit, so apply, revert (byte-exact), stack, diff and
                `ask --patch` work on adapters people already have. Zero-padded rank components (as `export`
                writes for llama.cpp) are dropped. Quantized base tensors are promoted to --promote.
                Refused with nothing written: an adapter for another architecture or other shapes, a GGUF that is
                not a LoRA adapter, a PEFT type other than LORA (or DoRA, bias adapters).

                  wilke import eiffel-lora.gguf --base SmolLM2-135M-Instruct.Q4_1.gguf -o eiffel.wpatch
                  wilke import my-peft-adapter --base smollm2-hf -o adapter.wpatch
                """)

        @Argument(help: "Adapter: a llama.cpp LoRA .gguf, or a PEFT directory (adapter_config.json).")
        var adapter: String

        @Option(name: .long, help: "The model the adapter is for (.gguf, .safetensors or a Hugging Face directory).")
        var base: String

        @Option(name: .shortAndLong, help: "Output .wpatch.")
        var output: String

        @Option(name: .long, help: "Float type a quantized base tensor becomes: f32, f16 or bf16.")
        var promote: FloatDType = .f32

        @Flag(name: .long, help: "Replace an existing output.")
        var force = false

        func run() throws {
            ignoreFileSizeSignal()
            let ckpt = try naming(base) { try Checkpoint.open(base) }
            let arch = ckpt.architecture ?? "unknown"
            let (lora, ggufOrder, kind): (LoRAAdapter, Bool, String) = try naming(adapter) {
                if PEFTAdapter.isAdapterDirectory(adapter) { return (try PEFTAdapter.read(adapter, architecture: arch), false, "peft") }
                var isDir: ObjCBool = false
                if FileManager.default.fileExists(atPath: adapter, isDirectory: &isDir), isDir.boolValue {
                    throw CLIError("\(adapter): a directory without \(PEFTAdapter.configName) is not a PEFT adapter")
                }
                return (try LlamaLoRAFile.read(try GGUFFile(path: adapter)), true, "llama-lora")
            }
            let name = (adapter as NSString).lastPathComponent
            let p = try naming(base) {
                try LoRAImport.patch(from: lora, base: ckpt, ggufRowOrder: ggufOrder, promoteTo: promote.dtype,
                                     metadata: ["tool": "wilke 0.1", "imported_from": name, "adapter_format": kind])
            }
            try writePatch(p, to: output, overwrite: force)
            let steps = p.steps.map { "\($0.tensor) rank \($0.rank) scale \($0.scale)" }.joined(separator: ", ")
            print("imported \(name) (\(kind)) as \(short(p.id)): one rank-r step per adapted tensor: \(steps)")
            print("wrote \(output)")
        }
    }
}
