import Foundation

/// One candidate next token.
public struct TokenScore: Sendable, Equatable, Codable {
    public var id: Int
    public var piece: String
    public var logit: Float
    public var probability: Double
}

extension LoadedModel {
    /// Token ids of a user prompt, with the model's BOS rule; refuses empty prompts and prompts that do
    /// not leave room for `reserve` more tokens in the context.
    public func encodePrompt(_ text: String, reserve: Int = 0) throws -> [Int] {
        guard !text.isEmpty else { throw WilKEError.invalidRequest("the prompt is empty") }
        let ids = tokenizer.encode(text, addSpecial: true)
        guard !ids.isEmpty else { throw WilKEError.invalidRequest("the prompt encodes to no tokens") }
        guard ids.count + reserve <= config.maxPositions else {
            throw WilKEError.sequenceTooLong(length: ids.count + reserve, maxPositions: config.maxPositions)
        }
        return ids
    }

    /// The `top` most likely next tokens after `ids` (softmax over the full vocabulary, in f64).
    public func nextTokens(after ids: [Int], top: Int) throws -> [TokenScore] {
        let r = try model.forward(ForwardBatch(sequences: [ids], logitsAt: [TokenPosition(row: 0, pos: ids.count - 1)]))
        return LoadedModel.topK(r.logits[0], top, tokenizer)
    }

    static func topK(_ logits: [Float], _ k: Int, _ tok: any Tokenizer) -> [TokenScore] {
        let maxLogit = Double(logits.max() ?? 0)
        var z = 0.0
        for l in logits { z += exp(Double(l) - maxLogit) }
        let order = logits.indices.sorted { logits[$0] > logits[$1] || (logits[$0] == logits[$1] && $0 < $1) }
        return order.prefix(max(0, k)).map { i in
            TokenScore(id: i, piece: tok.decode([i]), logit: logits[i], probability: exp(Double(logits[i]) - maxLogit) / z)
        }
    }

    /// Continues the prompt by up to `maxNewTokens` tokens (greedy, or top-k sampling with a seed);
    /// stops at the end-of-sequence token.
    public func complete(_ ids: [Int], maxNewTokens: Int, sampling: Sampling = .greedy, seed: UInt64 = 0) throws -> [Int] {
        var rng = SeededGenerator(seed: seed)
        let stops: Set<Int> = tokenizer.eosID.map { [$0] } ?? []
        return try Generator(model: model).generate(prompts: [ids], maxNewTokens: maxNewTokens, sampling: sampling,
                                                    stopTokens: stops, rng: &rng)[0]
    }
}
