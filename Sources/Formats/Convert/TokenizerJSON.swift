import Foundation

/// Builds a Hugging Face `tokenizer.json` from GGUF `tokenizer.ggml.*` metadata, the way transformers
/// builds its tokenizer when it loads a GGUF: byte-level BPE (`model = gpt2`) with the vocabulary and
/// merges as stored, control tokens as special added tokens, and the split regex that
/// `tokenizer.ggml.pre` selects. One deviation from transformers' GGUF loader: for the digit-splitting
/// pre-tokenizers (SmolLM2's "smollm") we split digits first, as llama.cpp and the model's original
/// tokenizer do; transformers' GGUF loader ignores `tokenizer.ggml.pre` there.
public enum TokenizerJSON {
    /// Pre-tokenizer split regexes by `tokenizer.ggml.pre`; anything else uses GPT-2's ByteLevel regex
    /// (SmolLM2's "smollm" among them, as in transformers' GGUF loader).
    static let splits: [String: String] = [
        "llama-bpe": #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
        "llama3": #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
        "qwen2": #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
    ]

    /// Pre-tokenizer types that split every digit off first (llama.cpp's `smollm`, `starcoder`, ...;
    /// SmolLM2's own tokenizer.json does the same: Digits(individual_digits) then ByteLevel).
    static let digitSplitting: Set<String> = ["smollm", "starcoder", "refact", "codeshell", "exaone", "granite"]

    public static func build(gguf g: GGUFFile) throws -> [UInt8] {
        guard g["tokenizer.ggml.model"]?.string == "gpt2" else {
            throw FormatError.unsupportedDType(g["tokenizer.ggml.model"]?.string ?? "none", operation: "tokenizer.json export (only byte-level BPE, tokenizer.ggml.model = gpt2)")
        }
        guard let tokens = g["tokenizer.ggml.tokens"]?.stringArray, let merges = g["tokenizer.ggml.merges"]?.stringArray else {
            throw FormatError.missingHyperparameter("tokenizer.ggml.tokens / tokenizer.ggml.merges")
        }
        var types: [Int] = []
        if case let .array(_, values)? = g["tokenizer.ggml.token_type"] { types = values.map { $0.int ?? 1 } }

        var vocab: [String: Int] = [:]
        for (i, t) in tokens.enumerated() where vocab[t] == nil { vocab[t] = i }
        var added: [[String: Any]] = []
        for (i, t) in tokens.enumerated() where i < types.count && types[i] == 3 {
            added.append(["id": i, "content": t, "single_word": false, "lstrip": false, "rstrip": false,
                          "normalized": false, "special": true])
        }
        let byteLevel: [String: Any] = ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true]
        let pre: [String: Any]
        if let regex = splits[g["tokenizer.ggml.pre"]?.string ?? ""] {
            pre = ["type": "Sequence", "pretokenizers": [
                ["type": "Split", "pattern": ["Regex": regex], "behavior": "Isolated", "invert": false],
                ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false],
            ]]
        } else if digitSplitting.contains(g["tokenizer.ggml.pre"]?.string ?? "") {
            pre = ["type": "Sequence", "pretokenizers": [["type": "Digits", "individual_digits": true], byteLevel]]
        } else {
            pre = byteLevel
        }
        let model: [String: Any] = [
            "type": "BPE", "dropout": NSNull(), "unk_token": NSNull(), "continuing_subword_prefix": NSNull(),
            "end_of_word_suffix": NSNull(), "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
            "vocab": vocab, "merges": merges.map { $0.split(separator: " ", maxSplits: 1).map(String.init) },
        ]
        let json: [String: Any] = [
            "version": "1.0", "truncation": NSNull(), "padding": NSNull(), "added_tokens": added,
            "normalizer": NSNull(), "pre_tokenizer": pre, "post_processor": byteLevel, "decoder": byteLevel,
            "model": model,
        ]
        let data = try JSONSerialization.data(withJSONObject: json, options: [.sortedKeys, .withoutEscapingSlashes])
        return [UInt8](data)
    }

    /// tokenizer_config.json: special tokens and the BOS rule.
    public static func config(gguf g: GGUFFile) -> [UInt8] {
        let tokens = g["tokenizer.ggml.tokens"]?.stringArray ?? []
        func tok(_ key: String) -> Any {
            guard let id = g["tokenizer.ggml.\(key)"]?.int, id >= 0, id < tokens.count else { return NSNull() }
            return tokens[id]
        }
        var json: [String: Any] = [
            "tokenizer_class": "PreTrainedTokenizerFast",
            "bos_token": tok("bos_token_id"), "eos_token": tok("eos_token_id"),
            "unk_token": tok("unknown_token_id"), "pad_token": tok("padding_token_id"),
            "add_bos_token": g["tokenizer.ggml.add_bos_token"].flatMap { if case let .bool(b) = $0 { return b } else { return nil } } ?? false,
            "model_max_length": g[(g.architecture ?? "llama") + ".context_length"]?.int ?? 2048,
        ]
        if let t = g["tokenizer.chat_template"]?.string { json["chat_template"] = t }
        return [UInt8]((try? JSONSerialization.data(withJSONObject: json, options: [.sortedKeys, .prettyPrinted])) ?? Data("{}".utf8))
    }
}
