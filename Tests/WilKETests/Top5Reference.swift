import Testing
@testable import WilKE

/// A real model's reference from transformers loading the same checkpoint (make_smollm2_reference.py,
/// make_gemma3_reference.py): per prompt its token ids and the top-5 next tokens with their logits
/// (and probabilities, where the script stored them).
struct Top5Reference: Decodable {
    struct Prompt: Decodable {
        var prompt: String
        var ids: [Int]
        var top5_ids: [Int]
        var top5_logits: [Double]
        var top5_probs: [Double]?
    }
    var prompts: [Prompt]

    /// Runs every prompt in one packed batch (rows of different lengths, no padding) and expects, per
    /// prompt, our tokenizer's ids, the greedy next token and the top-5 logits within `tolerance` of the
    /// reference. Returns the largest logit difference.
    func expectMatches(_ m: LoadedModel, tolerance: Double = 1e-3) throws -> Double {
        let batch = ForwardBatch(sequences: prompts.map(\.ids),
                                 logitsAt: prompts.enumerated().map { TokenPosition(row: $0, pos: $1.ids.count - 1) })
        let out = try m.model.forward(batch)
        var worst = 0.0
        for (i, p) in prompts.enumerated() {
            let logits = out.logits[i], name = p.prompt.suffix(40)
            let greedy = logits.indices.max { logits[$0] < logits[$1] }!
            #expect(greedy == p.top5_ids[0], "\(name): greedy \(greedy) vs \(p.top5_ids[0])")
            var rowWorst = 0.0
            for (id, l) in zip(p.top5_ids, p.top5_logits) { rowWorst = max(rowWorst, abs(Double(logits[id]) - l)) }
            if rowWorst > tolerance { Issue.record("\(name) (\(p.ids.count) tokens): top-5 logit diff \(rowWorst)") }
            worst = max(worst, rowWorst)
            #expect(m.tokenizer.encode(p.prompt, addSpecial: true) == p.ids, "\(name)")
        }
        #expect(worst <= tolerance)
        return worst
    }
}
