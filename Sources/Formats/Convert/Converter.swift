import Foundation

/// Checkpoint conversion: GGUF → Hugging Face directory, and safetensors → safetensors with another
/// float dtype. Outputs appear atomically (temp name, fsync, rename); on any error nothing is left.
public enum Converter {
    public typealias Progress = (_ done: Int, _ total: Int) -> Void

    /// Float dtypes a conversion may target.
    public static let targetDTypes: [DType] = [.f32, .f16, .bf16]

    /// GGUF → directory with config.json, model.safetensors (dequantized to `dtype`, Q/K rows back in
    /// HF order, GPT-2 weights back in Conv1D layout), tokenizer.json and tokenizer_config.json.
    public static func ggufToHuggingFace(_ ckpt: Checkpoint, output: String, dtype: DType, overwrite: Bool,
                                         progress: Progress? = nil) throws {
        guard let g = ckpt.gguf else { throw FormatError.unknownFormat(path: ckpt.path) }
        let hp = try ckpt.requiredConfig()
        guard targetDTypes.contains(dtype) else { throw FormatError.unsupportedDType(dtype.name, operation: "convert") }
        let dir = try OutputDirectory(path: output, overwrite: overwrite)
        var entries: [SafetensorsWriter.Entry] = []
        for t in ckpt.tensors {
            guard let hfName = TensorNames.huggingFace(canonical: t.name, architecture: hp.architecture) else { continue }
            // Tied heads: HF checkpoints leave lm_head out and reuse the embedding.
            if hfName == "lm_head.weight", hp.tiedHead { continue }
            let conv1D = hp.family == .gpt2 && t.shape.count == 2
                && TensorNames.conv1DStems.contains(t.name.split(separator: ".").dropLast().last.map(String.init) ?? "")
            let shape = conv1D ? Array(t.shape.reversed()) : t.shape
            // A GGUF stores Gemma's norms as 1 + w (llama.cpp's converter adds Gemma3RMSNorm's 1); HF stores w.
            let normOffset: Float = hp.family == .gemma3 && t.name.hasSuffix("norm.weight") ? 1 : 0
            entries.append(.init(name: hfName, dtype: dtype, shape: shape, source: .fill { dst in
                var values = try ckpt.logical(t)
                if conv1D { values = transpose(values, rows: t.shape[0], cols: t.shape[1]) }
                if normOffset != 0 { values = values.map { $0 - normOffset } }
                try values.withUnsafeBufferPointer { try TensorCodec.quantize(dtype, $0, into: dst) }
            }))
        }
        let total = entries.count
        var done = 0
        entries = entries.map { e in
            guard case let .fill(body) = e.source else { return e }
            var e = e
            e.source = .fill { dst in try body(dst); done += 1; progress?(done, total) }
            return e
        }
        do {
            try SafetensorsWriter.write(entries, metadata: ["format": "pt"], to: dir.file("model.safetensors"), overwrite: false)
            try dir.write("config.json", try configJSON(hp, gguf: g, dtype: dtype))
            if g["tokenizer.ggml.model"]?.string == "gpt2" {
                try dir.write("tokenizer.json", try TokenizerJSON.build(gguf: g))
                try dir.write("tokenizer_config.json", TokenizerJSON.config(gguf: g))
            }
            try dir.commit()
        } catch {
            dir.discard()
            throw error
        }
    }

    /// safetensors file or HF directory → the same kind of output with float tensors cast to `dtype`
    /// (integer and bool tensors are copied). A directory output also gets config.json / tokenizer files.
    public static func convertSafetensors(_ ckpt: Checkpoint, output: String, dtype: DType, overwrite: Bool,
                                          progress: Progress? = nil) throws {
        guard targetDTypes.contains(dtype) else { throw FormatError.unsupportedDType(dtype.name, operation: "convert") }
        let floats: Set<DType> = [.f64, .f32, .f16, .bf16]
        var entries: [SafetensorsWriter.Entry] = []
        let total = ckpt.tensors.count
        var done = 0
        for t in ckpt.tensors {
            if floats.contains(t.dtype), t.dtype != dtype {
                entries.append(.init(name: t.name, dtype: dtype, shape: t.shape, source: .fill { dst in
                    let values = try ckpt.floats(t)
                    try values.withUnsafeBufferPointer { try TensorCodec.quantize(dtype, $0, into: dst) }
                    done += 1
                    progress?(done, total)
                }))
            } else {
                entries.append(.init(name: t.name, dtype: t.dtype, shape: t.shape, source: .bytes(ckpt.data(t))))
            }
        }
        let metadata = ckpt.safetensors.first?.metadata ?? [:]
        switch ckpt.format {
        case .safetensors:
            try SafetensorsWriter.write(entries, metadata: metadata, to: output, overwrite: overwrite)
        case .huggingFaceDirectory:
            let dir = try OutputDirectory(path: output, overwrite: overwrite)
            do {
                // One output shard: the converted model is written whole; sharding is not preserved.
                try SafetensorsWriter.write(entries, metadata: metadata, to: dir.file("model.safetensors"), overwrite: false)
                for name in ["config.json", "tokenizer.json", "tokenizer_config.json", "generation_config.json", "special_tokens_map.json"] {
                    let src = ckpt.path + "/" + name
                    guard let data = FileManager.default.contents(atPath: src) else { continue }
                    try dir.write(name, name == "config.json" ? try retypedConfig(data, dtype: dtype, path: src) : [UInt8](data))
                }
                try dir.commit()
            } catch {
                dir.discard()
                throw error
            }
        case .gguf:
            throw FormatError.unknownFormat(path: ckpt.path)
        }
    }

    static func transpose(_ v: [Float], rows: Int, cols: Int) -> [Float] {
        var out = [Float](repeating: 0, count: v.count)
        for r in 0..<rows { for c in 0..<cols { out[c * rows + r] = v[r * cols + c] } }
        return out
    }

    /// config.json for transformers, from the GGUF hyper-parameters: their Codable form plus the keys
    /// a loader wants besides the architecture (class, dtype, special tokens).
    static func configJSON(_ hp: ModelConfig, gguf g: GGUFFile, dtype: DType) throws -> [UInt8] {
        guard var c = try JSONSerialization.jsonObject(with: JSONEncoder().encode(hp)) as? [String: Any] else {
            throw FormatError.invalidConfigJSON(path: "config.json")
        }
        let torchDType = ["F32": "float32", "F16": "float16", "BF16": "bfloat16"][dtype.name] ?? "float32"
        c["torch_dtype"] = torchDType
        c["dtype"] = torchDType
        for (key, ggufKey) in [("bos_token_id", "bos_token_id"), ("eos_token_id", "eos_token_id"), ("pad_token_id", "padding_token_id")] {
            if let id = g["tokenizer.ggml.\(ggufKey)"]?.int { c[key] = id }
        }
        // A Mistral GGUF would become a llama config: GGUF records no window, and transformers' Mistral
        // default (4096) would change the model. (llama.cpp itself writes Mistral as `llama`.)
        let hf = (hp.architecture == .mistral ? Architecture.llama : hp.architecture).huggingFace
        c["architectures"] = [hf.className]
        c["model_type"] = hf.modelType
        if hp.family == .gpt2 { c["n_ctx"] = hp.contextLength }
        return [UInt8](try JSONSerialization.data(withJSONObject: c, options: [.sortedKeys, .prettyPrinted]))
    }
}
