/// Errors thrown by the WilKE module: bad tokenizer data, and (appended by other parts) model and edit errors.
/// Each description is one lowercase sentence naming the thing that is wrong.
public enum WilKEError: Error, Equatable, CustomStringConvertible {
    // MARK: Tokenizer
    /// `tokenizer.json` is not valid JSON or lacks a required field (named).
    case malformedTokenizerJSON(String)
    /// The tokenizer describes a model, pre-tokenizer or option that is not implemented (named).
    case unsupportedTokenizer(String)
    /// A merge rule is not "left right" or names a piece missing from the vocabulary.
    case invalidMerge(String)
    /// Parallel tokenizer arrays (tokens, types, scores) have different lengths.
    case tokenizerArrayMismatch(String)
    /// A special token id (bos, eos, pad) is outside the vocabulary.
    case tokenIDOutOfRange(name: String, id: Int, vocabularySize: Int)

    public var description: String {
        switch self {
        case .malformedTokenizerJSON(let what): return "the tokenizer.json is malformed: \(what)"
        case .unsupportedTokenizer(let what): return "the tokenizer is not supported: \(what)"
        case .invalidMerge(let merge): return "the merge rule `\(merge)` is invalid"
        case .tokenizerArrayMismatch(let what): return "the tokenizer arrays disagree in length: \(what)"
        case .tokenIDOutOfRange(let name, let id, let n):
            return "the \(name) token id \(id) is outside the vocabulary of \(n) tokens"
        }
    }
}
