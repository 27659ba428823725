import Foundation
import Formats

// Hugging Face PEFT's LoRA adapter directory (what `PeftModel.save_pretrained` writes and
// `PeftModel.from_pretrained` loads):
//
//   adapter_config.json        {"peft_type": "LORA", "r": R, "lora_alpha": R, "target_modules": [...],
//                               "rank_pattern": {module: r}, "alpha_pattern": {module: alpha}, ...}
//   adapter_model.safetensors  "base_model.model.<module>.lora_A.weight"  [r, in]
//                              "base_model.model.<module>.lora_B.weight"  [out, r]
//
// <module> is the Hugging Face module path (`model.layers.5.mlp.down_proj`, GPT-2
// `transformer.h.5.mlp.c_proj`, GPT-J `transformer.h.5.mlp.fc_out`). PEFT computes
// W x + (alpha / r) · B (A x) per module (alpha / √r with use_rslora). GPT-2's Conv1D stores Wᵀ, so its
// adapters say fan_in_fan_out = true; lora_A / lora_B keep the [r, in] / [out, r] shapes either way.
// Target modules are listed by full path: PEFT matches a list entry against the end of a module's
// name, and a bare `c_proj` would also wrap every attention projection of GPT-2.

public enum PEFTAdapter {
    public static let configName = "adapter_config.json"
    public static let weightsName = "adapter_model.safetensors"
    static let prefix = "base_model.model."

    /// Writes `adapter` as a PEFT directory at `path` (atomically).
    /// - Parameters:
    ///   - huggingFaceName: the HF tensor name (`model.layers.5.mlp.down_proj.weight`) of a canonical name.
    ///   - baseModel: `base_model_name_or_path` (where the base's HF directory is, or its hub name).
    public static func write(_ adapter: LoRAAdapter, dtype: DType, huggingFaceName: (String) -> String?, baseModel: String,
                             to path: String, overwrite: Bool) throws {
        guard ElementCodec.floatTypes.contains(dtype) else { throw PatchError.unsupportedDType(dtype.name) }
        var entries: [SafetensorsWriter.Entry] = []
        var buffers: [[UInt8]] = []
        var modules: [(name: String, rank: Int, alpha: Float)] = []
        for f in adapter.factors {
            guard let hf = huggingFaceName(f.tensor), hf.hasSuffix(".weight") else {
                throw PatchError.notExportable(tensor: f.tensor, reason: "it has no Hugging Face module name")
            }
            let module = String(hf.dropLast(".weight".count))
            modules.append((module, f.rank, f.alpha ?? Float(f.rank)))
            buffers.append(ElementCodec.encode(f.a, as: dtype))
            buffers.append(ElementCodec.encode(f.b, as: dtype))
            entries.append(.init(name: prefix + module + ".lora_A.weight", dtype: dtype, shape: [f.rank, f.cols], source: .fill { _ in }))
            entries.append(.init(name: prefix + module + ".lora_B.weight", dtype: dtype, shape: [f.rows, f.rank], source: .fill { _ in }))
        }
        guard let first = modules.first else { throw PatchError.notExportable(tensor: "(none)", reason: "the patch has no steps") }
        for (n, bytes) in buffers.enumerated() { entries[n].source = .fill { $0.copyBytes(from: bytes) } }
        // The most common rank (and alpha) is the default; the others go to the patterns.
        let r = Dictionary(grouping: modules, by: \.rank).max { ($0.value.count, -$0.key) < ($1.value.count, -$1.key) }?.key ?? first.rank
        let alpha = Dictionary(grouping: modules, by: \.alpha).max { ($0.value.count, -$0.key) < ($1.value.count, -$1.key) }?.key ?? first.alpha
        var rankPattern: [String: Any] = [:], alphaPattern: [String: Any] = [:]
        for m in modules {
            if m.rank != r { rankPattern[NSRegularExpression.escapedPattern(for: m.name)] = m.rank }
            if m.alpha != alpha { alphaPattern[NSRegularExpression.escapedPattern(for: m.name)] = Double(m.alpha) }
        }
        let config: [String: Any] = [
            "peft_type": "LORA", "task_type": "CAUSAL_LM", "base_model_name_or_path": baseModel,
            "r": r, "lora_alpha": Double(alpha), "target_modules": modules.map(\.name),
            "rank_pattern": rankPattern, "alpha_pattern": alphaPattern,
            "fan_in_fan_out": Architecture(name: adapter.architecture)?.family == .gpt2,
            "lora_dropout": 0.0, "bias": "none", "use_rslora": false, "use_dora": false,
            "inference_mode": true, "init_lora_weights": true, "modules_to_save": NSNull(),
            "revision": NSNull(),
        ]
        let json = try JSONSerialization.data(withJSONObject: config, options: [.sortedKeys, .prettyPrinted])
        var meta = ["format": "pt"]
        for (k, v) in adapter.metadata where k.hasPrefix("wilke.") { meta[k] = v }
        let dir = try OutputDirectory(path: path, overwrite: overwrite)
        do {
            try SafetensorsWriter.write(entries, metadata: meta, to: dir.file(weightsName))
            try dir.write(configName, Array(json) + [0x0A])
            try dir.commit()
        } catch {
            dir.discard()
            throw error
        }
    }

    /// Whether `path` is a directory holding an adapter_config.json.
    public static func isAdapterDirectory(_ path: String) -> Bool {
        var isDir: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDir) && isDir.boolValue
            && FileManager.default.fileExists(atPath: path + "/" + configName)
    }

    /// Reads a PEFT LoRA directory for a base of `architecture`: module names become canonical names,
    /// and a module that model family does not have is an `adapterMismatch`.
    public static func read(_ path: String, architecture: String) throws -> LoRAAdapter {
        func bad(_ why: String) -> PatchError { .invalidAdapter(path: path, reason: why) }
        guard let data = FileManager.default.contents(atPath: path + "/" + configName) else { throw bad("it has no \(configName)") }
        guard let config = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else { throw bad("\(configName) is not a JSON object") }
        let type = config["peft_type"] as? String ?? "absent"
        guard type == "LORA" else { throw bad("peft_type is \(type); wilke reads LORA adapters only") }
        if config["use_dora"] as? Bool == true { throw bad("DoRA adapters (use_dora) are not low-rank updates") }
        if let bias = config["bias"] as? String, bias != "none" { throw bad("bias '\(bias)' adapters change biases, not only weights") }
        guard let r = config["r"] as? Int, r > 0 else { throw bad("\(configName) has no positive r") }
        let alpha = (config["lora_alpha"] as? NSNumber)?.doubleValue ?? Double(r)
        let rsLoRA = config["use_rslora"] as? Bool ?? false
        let rankPattern = config["rank_pattern"] as? [String: Any] ?? [:]
        let alphaPattern = config["alpha_pattern"] as? [String: Any] ?? [:]
        let weights = path + "/" + weightsName
        guard FileManager.default.fileExists(atPath: weights) else {
            throw bad("it has no \(weightsName) (pickled adapter_model.bin files are not read)")
        }
        let file = try SafetensorsFile(path: weights)
        var pairs: [String: (a: SafetensorsTensor?, b: SafetensorsTensor?)] = [:]
        var order: [String] = []
        for t in file.tensors {
            var name = t.name
            if name.hasPrefix(prefix) { name.removeFirst(prefix.count) }
            let isA: Bool
            if name.hasSuffix(".lora_A.weight") { isA = true } else if name.hasSuffix(".lora_B.weight") { isA = false } else {
                throw bad("tensor \(t.name) is not a lora_A / lora_B weight")
            }
            let module = String(name.dropLast(".lora_A.weight".count))
            if pairs[module] == nil { order.append(module) }
            if isA { pairs[module, default: (nil, nil)].a = t } else { pairs[module, default: (nil, nil)].b = t }
        }
        guard !order.isEmpty else { throw bad("\(weightsName) has no tensors") }
        var factors: [LoRAFactors] = []
        for module in order {
            guard let a = pairs[module]!.a, let b = pairs[module]!.b else { throw bad("module \(module) lacks its lora_A or lora_B") }
            guard a.shape.count == 2, b.shape.count == 2, a.shape[0] == b.shape[1], a.shape[0] > 0 else {
                throw bad("\(module): lora_A \(a.shape) and lora_B \(b.shape) are not [r, in] and [out, r]")
            }
            let rank = a.shape[0]
            let expected = (patternValue(rankPattern, module) as? Int) ?? r
            guard rank == expected else { throw bad("\(module) has rank \(rank), the config says \(expected)") }
            let moduleAlpha = (patternValue(alphaPattern, module) as? NSNumber)?.doubleValue ?? alpha
            guard let canonical = Architecture(name: architecture).flatMap({ TensorNames.canonical(hf: module + ".weight", architecture: $0) }) else {
                throw PatchError.adapterMismatch("module \(module) does not exist in a \(architecture) model")
            }
            // Scale alpha / r, or alpha / √r for rank-stabilized LoRA: expressed as an alpha over r.
            let effective = rsLoRA ? moduleAlpha * Double(rank).squareRoot() : moduleAlpha
            factors.append(LoRAFactors(tensor: canonical, rows: b.shape[0], cols: a.shape[1], rank: rank,
                                       b: try floats(b, file, path), a: try floats(a, file, path), alpha: Float(effective)))
        }
        return LoRAAdapter(architecture: architecture, factors: factors, metadata: ["wilke.patch": file.metadata["wilke.patch"] ?? ""])
    }

    /// PEFT's pattern lookup: a key matches a module whose name ends with it (as a regex, after a dot).
    static func patternValue(_ patterns: [String: Any], _ module: String) -> Any? {
        for key in patterns.keys.sorted() {
            if module == key || module.hasSuffix("." + key) { return patterns[key] }
            if let re = try? NSRegularExpression(pattern: "^(.*\\.)?(\(key))$"),
               re.firstMatch(in: module, range: NSRange(module.startIndex..., in: module)) != nil { return patterns[key] }
        }
        return nil
    }

    private static func floats(_ t: SafetensorsTensor, _ file: SafetensorsFile, _ path: String) throws -> [Float] {
        guard ElementCodec.floatTypes.contains(t.dtype) else {
            throw PatchError.invalidAdapter(path: path, reason: "tensor \(t.name) is \(t.dtype.name); wilke reads F32, F16 and BF16 adapters")
        }
        let values = try TensorCodec.dequantize(t.dtype, file.data(t), count: t.elementCount)
        guard values.allSatisfy(\.isFinite) else { throw PatchError.invalidAdapter(path: path, reason: "tensor \(t.name) holds non-finite values") }
        return values
    }
}
