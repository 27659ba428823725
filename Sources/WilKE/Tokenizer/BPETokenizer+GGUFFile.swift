import Formats

extension BPETokenizer {
    /// The tokenizer a GGUF file's `tokenizer.ggml.*` metadata describes.
    public convenience init(gguf: GGUFFile) throws {
        guard let model = gguf["tokenizer.ggml.model"]?.string else {
            throw WilKEError.unsupportedTokenizer("a GGUF without `tokenizer.ggml.model`")
        }
        guard let tokens = gguf.stringArray("tokenizer.ggml.tokens") else {
            throw WilKEError.unsupportedTokenizer("a GGUF without `tokenizer.ggml.tokens`")
        }
        let types = gguf["tokenizer.ggml.token_type"]?.intArray.map { $0.map { Int32(truncatingIfNeeded: $0) } }
        let scores = gguf["tokenizer.ggml.scores"]?.floatArray.map { $0.map { Float($0) } }
        try self.init(ggufTokens: tokens, merges: gguf.stringArray("tokenizer.ggml.merges") ?? [], tokenTypes: types,
                      scores: scores, model: model, pre: gguf["tokenizer.ggml.pre"]?.string,
                      bosID: gguf["tokenizer.ggml.bos_token_id"]?.int, eosID: gguf["tokenizer.ggml.eos_token_id"]?.int,
                      padID: gguf["tokenizer.ggml.padding_token_id"]?.int, addBOS: gguf["tokenizer.ggml.add_bos_token"]?.bool,
                      architecture: gguf["general.architecture"]?.string)
    }
}
