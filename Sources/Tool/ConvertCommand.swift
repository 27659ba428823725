import ArgumentParser
import Formats

extension RootCommand {
    struct Convert: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Convert a GGUF to a Hugging Face directory, or cast a safetensors checkpoint to another float dtype.",
            discussion: """
                GGUF input: writes a directory with config.json, model.safetensors (dequantized, Q/K rows in
                Hugging Face order), tokenizer.json and tokenizer_config.json that transformers loads.
                safetensors input (file or directory): float tensors are cast to --dtype.
                The output appears only when complete.

                  wilke convert SmolLM2-135M-Instruct.Q4_1.gguf -o smollm2-hf
                  wilke convert model.safetensors -o model-bf16.safetensors --dtype bf16
                """)

        @Argument(help: "Input checkpoint: .gguf, .safetensors, or a Hugging Face directory.")
        var input: String

        @Option(name: .shortAndLong, help: "Output path (a directory for GGUF or directory input, else a file).")
        var output: String

        @Option(name: .long, help: "Float dtype of the written tensors: f32, f16 or bf16.")
        var dtype: FloatDType = .f32

        @Flag(name: .long, help: "Replace the output if it exists.")
        var force = false

        func run() throws {
            let ckpt = try naming(input) { try Checkpoint.open(input) }
            let bar = ProgressBar("convert")
            try naming(input) {
                switch ckpt.format {
                case .gguf:
                    try Converter.ggufToHuggingFace(ckpt, output: output, dtype: dtype.dtype, overwrite: force, progress: bar.update)
                case .safetensors, .huggingFaceDirectory:
                    try Converter.convertSafetensors(ckpt, output: output, dtype: dtype.dtype, overwrite: force, progress: bar.update)
                }
            }
            printErr("wrote \(output)")
        }
    }
}

enum FloatDType: String, ExpressibleByArgument, CaseIterable {
    case f32, f16, bf16
    var dtype: DType { switch self { case .f32: return .f32; case .f16: return .f16; case .bf16: return .bf16 } }
}
