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

    // MARK: Model (Sources/WilKE/Model)
    /// A tensor the architecture needs is not in the checkpoint.
    case missingTensor(String)
    /// A tensor has the wrong shape (logical [out, in] row-major order).
    case tensorShape(name: String, expected: [Int], found: [Int])
    /// A tensor's value count does not match its shape.
    case tensorSize(name: String, expected: Int, found: Int)
    /// Saved data made for another model (a statistics fingerprint of other layers). A checkpoint's own
    /// hyper-parameters fail as `FormatError` (`ModelConfig`).
    case invalidConfig(String)
    /// An input token id is outside the vocabulary.
    case tokenOutOfRange(token: Int, vocabSize: Int)
    /// A row runs past GPT-2's learned position table.
    case sequenceTooLong(length: Int, maxPositions: Int)
    /// A (row, position) request points outside the batch, or before a row's cached prefix.
    case invalidPosition(row: Int, pos: Int)
    /// A layer index is outside 0..<nLayer (or not computable from the given resume point).
    case invalidLayer(Int)
    /// A delta vector has the wrong length.
    case vectorSize(expected: Int, found: Int)
    /// A forward batch combines options that cannot be served together.
    case invalidBatch(String)
    /// A weight matrix is stored in an element type no matmul kernel reads (named with its tensor).
    case uncomputableDType(tensor: String, dtype: String)
    /// The backward pass (edits) does not implement this block structure yet (the family is named).
    case backwardUnsupported(family: String)

    // MARK: Edits (Sources/WilKE/Edit)
    /// A file could not be read or written.
    case io(path: String, reason: String)
    /// An edit request is malformed (no "{}", empty subject or target, ...).
    case invalidRequest(String)
    /// A request file could not be parsed; the reason names the record.
    case invalidRequestFile(path: String, reason: String)

    // MARK: Key statistics (Sources/WilKE/Stats)
    /// A stats corpus file could not be parsed; the reason names the line.
    case invalidCorpus(path: String, reason: String)
    /// No token reached a layer's statistics (empty corpus or a zero token budget).
    case emptyStatistics(layer: Int)
    /// A key second moment stayed non-positive-definite even with the largest ridge, or a solve failed.
    case singularCovariance(layer: Int, reason: String)
    /// The statistics of `layers` layers at once need more memory than the machine has (bytes).
    case statisticsTooLarge(layers: Int, needed: UInt64, available: UInt64)
    /// LAPACK's symmetric eigensolver did not converge on a layer's key second moment (its `info`).
    case eigenDecomposition(layer: Int, info: Int)
    /// No eigenvalue of a layer's key second moment is below the null-space threshold, so a projected
    /// update has no direction left (AlphaEdit's rule; raise the threshold).
    case emptyNullSpace(layer: Int, threshold: Double)
    /// `--preserve null-space` needs the key statistics (it cannot run with C = I).
    case nullSpaceNeedsStatistics

    public var description: String {
        switch self {
        case .malformedTokenizerJSON(let what): return "the tokenizer.json is malformed: \(what)"
        case .unsupportedTokenizer(let what): return "the tokenizer is not supported: \(what)"
        case .invalidMerge(let merge): return "the merge rule `\(merge)` is invalid"
        case .tokenizerArrayMismatch(let what): return "the tokenizer arrays disagree in length: \(what)"
        case .tokenIDOutOfRange(let name, let id, let n):
            return "the \(name) token id \(id) is outside the vocabulary of \(n) tokens"
        case .missingTensor(let n): return "tensor \(n) is missing from the checkpoint"
        case .tensorShape(let n, let e, let f): return "tensor \(n) has shape \(f) but the model config needs \(e)"
        case .tensorSize(let n, let e, let f): return "tensor \(n) holds \(f) values but its shape needs \(e)"
        case .invalidConfig(let why): return "the model config is invalid: \(why)"
        case .tokenOutOfRange(let t, let v): return "token id \(t) is outside the vocabulary of \(v) tokens"
        case .sequenceTooLong(let l, let m): return "a sequence of \(l) tokens exceeds the model's \(m) positions"
        case .invalidPosition(let r, let p): return "position \(p) of row \(r) is outside the batch or inside its cached prefix"
        case .invalidLayer(let l): return "layer \(l) is outside the model or before the resumed layer"
        case .vectorSize(let e, let f): return "a delta vector has \(f) values but the model needs \(e)"
        case .invalidBatch(let why): return "the forward batch is invalid: \(why)"
        case .uncomputableDType(let t, let d): return "tensor \(t) is stored as \(d), which the engine cannot compute with"
        case .backwardUnsupported(let family):
            return "the backward pass does not implement the \(family) block yet, so this model cannot be edited"
        case .io(let path, let reason): return "\(path): \(reason)"
        case .invalidRequest(let why): return "invalid edit request: \(why)"
        case .invalidRequestFile(let path, let why): return "\(path): \(why)"
        case .invalidCorpus(let path, let why): return "\(path): \(why)"
        case .emptyStatistics(let l): return "no tokens were collected for the key statistics of layer \(l)"
        case .singularCovariance(let l, let why): return "the key second moment of layer \(l) cannot be solved: \(why)"
        case .statisticsTooLarge(let n, let need, let have):
            func gib(_ b: UInt64) -> Double { (Double(b) / 107374182.4).rounded() / 10 }
            return "the key statistics of \(n) layers at once need \(gib(need)) GiB but the machine has \(gib(have)) GiB; request fewer layers"
        case .eigenDecomposition(let l, let info):
            return "the eigen-decomposition of layer \(l)'s key second moment did not converge (dsyevd info \(info))"
        case .emptyNullSpace(let l, let t):
            return "layer \(l)'s key second moment has no eigenvalue below the null-space threshold \(t); raise --null-space-threshold"
        case .nullSpaceNeedsStatistics:
            return "--preserve null-space needs the key statistics; drop --no-covariance"
        }
    }
}
