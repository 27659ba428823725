/// Canonical tensor names are GGUF's (`blk.N.ffn_down.weight`); the tables below map Hugging Face
/// names of the GPT-2, GPT-J and Llama families (Llama, Mistral, Qwen2) onto them (FORMATS.md §2.9).
public enum TensorNames {
    /// The GGUF name for a Hugging Face tensor name, or nil if the tensor has no counterpart
    /// (e.g. GPT-2's `attn.bias` causal-mask buffer, rotary `inv_freq`).
    public static func canonical(hf name: String, architecture: Architecture) -> String? {
        var n = name
        for prefix in ["transformer.", "model."] where n.hasPrefix(prefix) { n.removeFirst(prefix.count) }
        let fam = architecture.family
        let (stem, suffix) = splitSuffix(n)
        if let g = globalNames[fam]?[stem] { return g + suffix }
        let blocks = blockNames(architecture)
        // layers.N.xxx / h.N.xxx
        let parts = stem.split(separator: ".", maxSplits: 2).map(String.init)
        guard parts.count == 3, parts[0] == "layers" || parts[0] == "h", let layer = Int(parts[1]),
              let g = blocks[parts[2]] else { return nil }
        return "blk.\(layer).\(g)\(suffix)"
    }

    /// The Hugging Face name for a canonical GGUF name, for writing HF checkpoints (convert).
    public static func huggingFace(canonical name: String, architecture: Architecture) -> String? {
        let fam = architecture.family
        let (stem, suffix) = splitSuffix(name)
        let hfLlama = fam == .llama || fam == .gemma3
        let prefix = hfLlama ? "model." : "transformer."
        if let hf = globalNames[fam]?.first(where: { $0.value == stem })?.key {
            return (hf == "lm_head" ? "" : prefix) + hf + suffix
        }
        let parts = stem.split(separator: ".", maxSplits: 2).map(String.init)
        guard parts.count == 3, parts[0] == "blk", let layer = Int(parts[1]),
              let hf = blockNames(architecture).first(where: { $0.value == parts[2] })?.key else { return nil }
        return prefix + (hfLlama ? "layers" : "h") + ".\(layer).\(hf)\(suffix)"
    }

    static func splitSuffix(_ n: String) -> (String, String) {
        for s in [".weight", ".bias"] where n.hasSuffix(s) { return (String(n.dropLast(s.count)), s) }
        return (n, "")
    }

    static let globalNames: [ModelFamily: [String: String]] = [
        .llama: ["embed_tokens": "token_embd", "norm": "output_norm", "lm_head": "output"],
        .gemma3: ["embed_tokens": "token_embd", "norm": "output_norm", "lm_head": "output"],
        .gpt2: ["wte": "token_embd", "wpe": "position_embd", "ln_f": "output_norm", "lm_head": "output"],
        .gptj: ["wte": "token_embd", "ln_f": "output_norm", "lm_head": "output"],
    ]

    /// Hugging Face module → GGUF stem for the blocks of `architecture`: its family's table with the
    /// architecture's own entries over it (one HF name per GGUF stem, so the reverse lookup is unique).
    static func blockNames(_ architecture: Architecture) -> [String: String] {
        var names = familyBlockNames[architecture.family] ?? [:]
        for (hf, gguf) in architectureBlockNames[architecture] ?? [:] {
            names = names.filter { $0.value != gguf }
            names[hf] = gguf
        }
        return names
    }

    /// What an architecture names differently from its family. Qwen3's per-head norms are llama.cpp's
    /// `attn_q_norm` / `attn_k_norm`; Phi-3's fused projections keep their rows in GGUF: `attn_qkv` is
    /// [q | k | v], `ffn_up` is [gate | up] (convert_hf_to_gguf.py maps both names unchanged).
    static let architectureBlockNames: [Architecture: [String: String]] = [
        .qwen3: ["self_attn.q_norm": "attn_q_norm", "self_attn.k_norm": "attn_k_norm"],
        .phi3: ["self_attn.qkv_proj": "attn_qkv", "mlp.gate_up_proj": "ffn_up"],
    ]

    static let familyBlockNames: [ModelFamily: [String: String]] = [
        .llama: [
            "input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
            "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output",
            "post_attention_layernorm": "ffn_norm", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
            "mlp.down_proj": "ffn_down",
        ],
        // Gemma 3's post_attention_layernorm is the norm after attention, not llama's pre-MLP norm.
        .gemma3: [
            "input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
            "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output", "self_attn.q_norm": "attn_q_norm",
            "self_attn.k_norm": "attn_k_norm", "post_attention_layernorm": "post_attention_norm",
            "pre_feedforward_layernorm": "ffn_norm", "post_feedforward_layernorm": "post_ffw_norm",
            "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down",
        ],
        .gpt2: [
            "ln_1": "attn_norm", "attn.c_attn": "attn_qkv", "attn.c_proj": "attn_output", "ln_2": "ffn_norm",
            "mlp.c_fc": "ffn_up", "mlp.c_proj": "ffn_down",
        ],
        .gptj: [
            "ln_1": "attn_norm", "attn.q_proj": "attn_q", "attn.k_proj": "attn_k", "attn.v_proj": "attn_v",
            "attn.out_proj": "attn_output", "mlp.fc_in": "ffn_up", "mlp.fc_out": "ffn_down",
        ],
    ]

    /// GPT-2 HF weights stored as Conv1D [in, out].
    static let conv1DStems: Set<String> = ["attn_qkv", "attn_output", "ffn_up", "ffn_down"]

    /// Storage layout of a tensor given its canonical name, format and the model's head counts; nil
    /// `architecture` (no hyper-parameters): matrices as stored.
    public static func layout(canonical name: String, architecture: Architecture?, isGGUF: Bool, rank: Int,
                              heads: Int, kvHeads: Int) -> StorageLayout {
        guard rank == 2, name.hasSuffix(".weight") else { return .vector }
        guard let architecture else { return .rowMajor }
        let stem = name.split(separator: ".").dropLast().last.map(String.init) ?? ""
        if architecture.family == .gpt2, !isGGUF, conv1DStems.contains(stem) { return .conv1D }
        if isGGUF, architecture.ggufPermutesQK, stem == "attn_q" { return .permutedRows(heads: heads) }
        if isGGUF, architecture.ggufPermutesQK, stem == "attn_k" { return .permutedRows(heads: kvHeads) }
        return .rowMajor
    }
}
