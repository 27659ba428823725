import Foundation

/// Loading a Hugging Face `tokenizer.json` that describes byte-level BPE.
extension BPETokenizer {
    /// Accepts `model.type == "BPE"` with no normalizer, a ByteLevel decoder, and one of the pre-tokenizers
    /// `ByteLevel(use_regex: true)` (GPT-2), `Sequence[Digits(individual_digits), ByteLevel]` (SmolLM2) or
    /// `Sequence[Split(Regex <Llama-3 or Qwen2 pattern>), ByteLevel(use_regex: false)]`. BOS comes from a
    /// `TemplateProcessing` post-processor that starts with a special token; EOS from a well-known name.
    public convenience init(tokenizerJSON: Data) throws {
        guard let root = try? JSONSerialization.jsonObject(with: tokenizerJSON) as? [String: Any] else {
            throw WilKEError.malformedTokenizerJSON("not a JSON object")
        }
        guard let model = root["model"] as? [String: Any] else { throw WilKEError.malformedTokenizerJSON("no `model`") }
        guard (model["type"] as? String) == "BPE" else {
            throw WilKEError.unsupportedTokenizer("model type `\(model["type"] as? String ?? "none")`")
        }
        guard let vocab = model["vocab"] as? [String: Any] else { throw WilKEError.malformedTokenizerJSON("no `model.vocab`") }
        if root["normalizer"] != nil && !(root["normalizer"] is NSNull) {
            throw WilKEError.unsupportedTokenizer("a normalizer")
        }
        let pre = try Self.preTokenizer(root["pre_tokenizer"])

        var table: [(String, Int)] = []
        for (piece, value) in vocab {
            guard let id = (value as? NSNumber)?.intValue, id >= 0 else {
                throw WilKEError.malformedTokenizerJSON("the id of `\(piece)`")
            }
            table.append((piece, id))
        }
        var addedEntries: [(String, Int, Bool)] = []
        for entry in root["added_tokens"] as? [[String: Any]] ?? [] {
            guard let content = entry["content"] as? String, let id = (entry["id"] as? NSNumber)?.intValue, id >= 0 else {
                throw WilKEError.malformedTokenizerJSON("an added token")
            }
            addedEntries.append((content, id, entry["special"] as? Bool ?? false))
            table.append((content, id))
        }
        let size = (table.map(\.1).max() ?? -1) + 1
        // Dense ids 0..<size need at least `size` entries: a larger id is a gap, refused before the table
        // is allocated (an id near Int.max from the file would otherwise ask for exabytes).
        guard size <= table.count else { throw WilKEError.malformedTokenizerJSON("the ids have gaps") }
        var pieces = [String?](repeating: nil, count: size)
        for (piece, id) in table where pieces[id] == nil { pieces[id] = piece }
        guard pieces.allSatisfy({ $0 != nil }) else { throw WilKEError.malformedTokenizerJSON("the ids have gaps") }
        let stored = pieces.map { $0! }

        // Since tokenizers 0.20 merges may be stored as ["a", "b"] pairs instead of "a b".
        var merges: [String] = []
        for m in model["merges"] as? [Any] ?? [] {
            if let s = m as? String {
                merges.append(s)
            } else if let pair = m as? [String], pair.count == 2 {
                merges.append(pair[0] + " " + pair[1])
            } else {
                throw WilKEError.malformedTokenizerJSON("a merge")
            }
        }

        var added = AddedTokens()
        for (content, id, _) in addedEntries { added.add(content, id: Int32(id)) }
        let bos = Self.templateBOS(root["post_processor"], addedEntries)
        let named = Dictionary(addedEntries.map { ($0.0, $0.1) }, uniquingKeysWith: { a, _ in a })
        let eos = named["<|endoftext|>"] ?? named["</s>"] ?? named["<|end_of_text|>"] ?? named["<|im_end|>"]
        try self.init(byteLevel: stored, stored: stored, merges: merges, added: added, pre: pre,
                      bosID: bos ?? named["<|endoftext|>"] ?? named["<s>"] ?? named["<|begin_of_text|>"],
                      eosID: eos, padID: nil, addsBOS: bos != nil)
    }

    private static func preTokenizer(_ value: Any?) throws -> PreTokenizer {
        guard let node = value as? [String: Any], let type = node["type"] as? String else {
            throw WilKEError.unsupportedTokenizer("a tokenizer.json without a byte-level pre-tokenizer")
        }
        if type == "ByteLevel" {
            guard node["use_regex"] as? Bool ?? true else { throw WilKEError.unsupportedTokenizer("ByteLevel without its regex") }
            guard !(node["add_prefix_space"] as? Bool ?? false) else {
                throw WilKEError.unsupportedTokenizer("ByteLevel with add_prefix_space")
            }
            return .gpt2
        }
        guard type == "Sequence", let steps = node["pretokenizers"] as? [[String: Any]], steps.count == 2,
              (steps[1]["type"] as? String) == "ByteLevel", !(steps[1]["add_prefix_space"] as? Bool ?? false) else {
            throw WilKEError.unsupportedTokenizer("pre-tokenizer `\(type)`")
        }
        let first = steps[0]
        if (first["type"] as? String) == "Digits", first["individual_digits"] as? Bool == true,
           steps[1]["use_regex"] as? Bool ?? true {
            return .digitsThenGPT2
        }
        if (first["type"] as? String) == "Split", !(steps[1]["use_regex"] as? Bool ?? true),
           let pattern = (first["pattern"] as? [String: Any])?["Regex"] as? String {
            if pattern == llama3Pattern { return .llama3 }
            if pattern == qwen2Pattern { return .qwen2 }
        }
        throw WilKEError.unsupportedTokenizer("pre-tokenizer sequence starting with `\(first["type"] as? String ?? "?")`")
    }

    static let llama3Pattern = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let qwen2Pattern = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    /// The id a `TemplateProcessing` post-processor puts before `$A`, if any.
    private static func templateBOS(_ value: Any?, _ added: [(String, Int, Bool)]) -> Int? {
        guard let node = value as? [String: Any], (node["type"] as? String) == "TemplateProcessing",
              let single = node["single"] as? [[String: Any]], let first = single.first,
              let special = first["SpecialToken"] as? [String: Any], let name = special["id"] as? String else { return nil }
        if let tokens = node["special_tokens"] as? [String: Any], let entry = tokens[name] as? [String: Any],
           let ids = entry["ids"] as? [NSNumber], let id = ids.first {
            return id.intValue
        }
        return added.first { $0.0 == name }?.1
    }
}
