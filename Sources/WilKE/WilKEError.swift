/// Errors thrown by the WilKE module. Each description is one lowercase sentence naming the thing at fault.
public enum WilKEError: Error, Equatable, CustomStringConvertible {
    // MARK: model (Sources/WilKE/Model)
    /// A tensor the architecture needs is not in the checkpoint.
    case missingTensor(String)
    /// A tensor has the wrong shape (logical [out, in] row-major order).
    case tensorShape(name: String, expected: [Int], found: [Int])
    /// A tensor's value count does not match its shape.
    case tensorSize(name: String, expected: Int, found: Int)
    /// `config.json` names a model family the engine does not implement.
    case unsupportedArchitecture(String)
    /// `config.json` is unreadable or holds an unsupported or inconsistent setting.
    case invalidConfig(String)
    /// An input token id is outside the vocabulary.
    case tokenOutOfRange(token: Int, vocabSize: Int)
    /// A row is longer than the model's position table (GPT-2 / GPT-J) or context.
    case sequenceTooLong(length: Int, maxPositions: Int)
    /// A (row, position) request points outside the batch, or before a row's cached prefix.
    case invalidPosition(row: Int, pos: Int)
    /// A layer index is outside 0..<nLayer (or not computable from the given resume point).
    case invalidLayer(Int)
    /// A delta vector has the wrong length.
    case vectorSize(expected: Int, found: Int)
    /// A forward batch combines options that cannot be served together.
    case invalidBatch(String)

    public var description: String {
        switch self {
        case .missingTensor(let n): "tensor \(n) is missing from the checkpoint"
        case .tensorShape(let n, let e, let f): "tensor \(n) has shape \(f) but the model config needs \(e)"
        case .tensorSize(let n, let e, let f): "tensor \(n) holds \(f) values but its shape needs \(e)"
        case .unsupportedArchitecture(let a): "model architecture \(a) is not supported (use gpt2, gptj, llama or qwen2)"
        case .invalidConfig(let why): "the model config is invalid: \(why)"
        case .tokenOutOfRange(let t, let v): "token id \(t) is outside the vocabulary of \(v) tokens"
        case .sequenceTooLong(let l, let m): "a sequence of \(l) tokens exceeds the model's \(m) positions"
        case .invalidPosition(let r, let p): "position \(p) of row \(r) is outside the batch or inside its cached prefix"
        case .invalidLayer(let l): "layer \(l) is outside the model or before the resumed layer"
        case .vectorSize(let e, let f): "a delta vector has \(f) values but the model needs \(e)"
        case .invalidBatch(let why): "the forward batch is invalid: \(why)"
        }
    }
}
