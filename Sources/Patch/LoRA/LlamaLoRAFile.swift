import Formats

// llama.cpp's LoRA adapter GGUF (what `convert_lora_to_gguf.py` writes and `llama_adapter_lora_init`
// reads; Ollama's ADAPTER is the same file):
//
//   metadata   general.architecture = the base's (llama.cpp refuses another), general.type = "adapter",
//              adapter.type = "lora", adapter.lora.alpha (f32; 0 or absent = scale 1)
//   tensors    "<base tensor>.lora_a"  ne = [in, r]   (numpy [r, in]:  A)
//              "<base tensor>.lora_b"  ne = [r, out]  (numpy [out, r]: B)
//
// llama.cpp checks a.ne[0] == W.ne[0], b.ne[1] == W.ne[1], a.ne[1] == b.ne[0], and computes
// W x + (alpha / r) · B (A x) with r = b.ne[0]. alpha is one value per file, so every pair is written at
// the file's largest rank (zero-padded) and alpha = that rank: the scale is exactly 1 everywhere.
// B rows are in the GGUF tensor's storage order (llama Q/K rows are permuted, FORMATS.md §2.10).

public enum LlamaLoRAFile {
    /// Writes `adapter` (logical factors, each pair's scale 1) as a llama.cpp LoRA GGUF.
    /// - Parameters:
    ///   - dtype: f32, f16 or bf16 for the factor tensors.
    ///   - baseMetadata: keys copied from the base GGUF after the adapter's own (`<arch>.*` hyper-parameters).
    ///   - rowPermutation: the GGUF layout of a tensor whose rows it permutes (llama Q/K), nil for none.
    public static func write(_ adapter: LoRAAdapter, dtype: DType, baseMetadata: [(key: String, value: GGUFValue)] = [],
                             rowPermutation: (String) -> StorageLayout? = { _ in nil }, to path: String,
                             overwrite: Bool) throws {
        guard ElementCodec.floatTypes.contains(dtype) else { throw PatchError.unsupportedDType(dtype.name) }
        let r = adapter.maxRank
        guard r > 0 else { throw PatchError.notExportable(tensor: "(none)", reason: "the patch has no steps") }
        var meta: [(key: String, value: GGUFValue)] = [
            ("general.architecture", .text(adapter.architecture)),
            ("general.type", .text("adapter")),
            ("general.name", .text(adapter.metadata["general.name"] ?? "wilke edit")),
            ("adapter.type", .text("lora")),
            ("adapter.lora.alpha", .float32(Float(r))),
        ]
        for (k, v) in adapter.metadata.sorted(by: { $0.key < $1.key }) where k.hasPrefix("wilke.") { meta.append((k, .text(v))) }
        let own = Set(meta.map(\.key))
        meta += baseMetadata.filter { !own.contains($0.key) }
        var w = GGUFWriter(metadata: meta)
        for f in adapter.factors {
            guard f.scale == 1 else { throw PatchError.notExportable(tensor: f.tensor, reason: "its scale alpha / r is \(f.scale), not 1") }
            var g = f.padded(to: r)
            if let p = rowPermutation(f.tensor) { g = g.rowsPermuted(p, inverse: false) }
            let aBytes = ElementCodec.encode(g.a, as: dtype), bBytes = ElementCodec.encode(g.b, as: dtype)
            w.addTensor(name: f.tensor + ".lora_a", ne: [f.cols, r], dtype: dtype, source: .fill { $0.copyBytes(from: aBytes) })
            w.addTensor(name: f.tensor + ".lora_b", ne: [r, f.rows], dtype: dtype, source: .fill { $0.copyBytes(from: bBytes) })
        }
        try w.write(to: path, overwrite: overwrite)
    }

    /// Whether `file` is a llama.cpp adapter (by its metadata, not its name).
    public static func isAdapter(_ file: GGUFFile) -> Bool { file["general.type"]?.string == "adapter" }

    /// Reads a llama.cpp LoRA GGUF. B rows come back in the file's (GGUF storage) order; the caller
    /// undoes a Q/K permutation with `LoRAFactors.rowsPermuted(_:inverse: true)`.
    public static func read(_ file: GGUFFile) throws -> LoRAAdapter {
        let path = file.file.path
        func bad(_ why: String) -> PatchError { .invalidAdapter(path: path, reason: why) }
        guard let type = file["general.type"]?.string else { throw bad("it has no general.type (a model, not an adapter?)") }
        guard type == "adapter" else { throw bad("general.type is '\(type)', not 'adapter'") }
        guard let kind = file["adapter.type"]?.string, kind == "lora" else {
            throw bad("adapter.type is '\(file["adapter.type"]?.string ?? "absent")', not 'lora'")
        }
        guard let arch = file.architecture else { throw bad("it has no general.architecture") }
        let alphaValue = file["adapter.lora.alpha"]?.float
        let alpha: Float? = alphaValue.flatMap { $0 == 0 ? nil : Float($0) }
        var pairs: [String: (a: GGUFTensorInfo?, b: GGUFTensorInfo?)] = [:]
        var order: [String] = []
        for t in file.tensors {
            let (stem, isA): (String, Bool)
            if t.name.hasSuffix(".lora_a") { (stem, isA) = (String(t.name.dropLast(7)), true) }
            else if t.name.hasSuffix(".lora_b") { (stem, isA) = (String(t.name.dropLast(7)), false) }
            else { throw bad("tensor \(t.name) is neither a .lora_a nor a .lora_b") }
            if pairs[stem] == nil { order.append(stem) }
            if isA { pairs[stem, default: (nil, nil)].a = t } else { pairs[stem, default: (nil, nil)].b = t }
        }
        guard !order.isEmpty else { throw bad("it has no tensors") }
        var factors: [LoRAFactors] = []
        for stem in order {
            guard let a = pairs[stem]!.a, let b = pairs[stem]!.b else { throw bad("tensor \(stem) lacks its lora_a or lora_b") }
            guard !stem.hasSuffix("token_embd.weight") else { throw bad("embedding adapters (\(stem)) are not supported") }
            guard a.ne.count == 2, b.ne.count == 2, a.ne[1] == b.ne[0], a.ne[1] > 0 else {
                throw bad("\(stem): lora_a ne \(a.ne) and lora_b ne \(b.ne) are not [in, r] and [r, out]")
            }
            let r = a.ne[1], cols = a.ne[0], rows = b.ne[1]
            let av = try floats(a, file, path), bv = try floats(b, file, path)
            factors.append(LoRAFactors(tensor: stem, rows: rows, cols: cols, rank: r, b: bv, a: av, alpha: alpha))
        }
        return LoRAAdapter(architecture: arch, factors: factors, metadata: ["wilke.patch": file["wilke.patch"]?.string ?? ""])
    }

    private static func floats(_ t: GGUFTensorInfo, _ file: GGUFFile, _ path: String) throws -> [Float] {
        guard ElementCodec.floatTypes.contains(t.dtype) else {
            throw PatchError.invalidAdapter(path: path, reason: "tensor \(t.name) is \(t.dtype.name); wilke reads F32, F16 and BF16 adapters")
        }
        let values = try TensorCodec.dequantize(t.dtype, file.data(t), count: t.elementCount)
        guard values.allSatisfy(\.isFinite) else { throw PatchError.invalidAdapter(path: path, reason: "tensor \(t.name) holds non-finite values") }
        return values
    }
}
