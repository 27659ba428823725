import Foundation

/// The protocol's one test (ALGORITHM.md §4.3): run `prompt + " " + target` teacher-forced and check
/// that at every target position the argmax of the previous position's logits is the target token.
/// Probes are batched (rows keep their lengths) so retention over many facts costs few forward calls.
public struct ExactMatch {
    public let loaded: LoadedModel
    /// Rows per forward call.
    public var batchSize: Int

    public init(_ loaded: LoadedModel, batchSize: Int = 16) {
        self.loaded = loaded
        self.batchSize = max(1, batchSize)
    }

    /// A prompt (subject already filled in) and the answer it must produce.
    public struct Probe: Sendable, Equatable {
        public var prompt: String
        public var answer: String
        public init(prompt: String, answer: String) { self.prompt = prompt; self.answer = answer }
    }

    /// Token ids of the answer as the reference scores it: `tok(" " + answer)`, no special tokens.
    public func answerIDs(_ answer: String) -> [Int] {
        loaded.tokenizer.encode(answer.hasPrefix(" ") ? answer : " " + answer, addSpecial: false)
    }

    /// Whether each probe's answer is reproduced exactly, in order.
    public func matches(_ probes: [Probe]) throws -> [Bool] {
        var out: [Bool] = []
        out.reserveCapacity(probes.count)
        var start = 0
        while start < probes.count {
            let chunk = probes[start ..< min(start + batchSize, probes.count)]
            var sequences: [[Int]] = [], at: [TokenPosition] = [], targets: [[Int]] = []
            for (row, p) in chunk.enumerated() {
                let prompt = try loaded.encodePrompt(p.prompt)
                let target = answerIDs(p.answer)
                guard !target.isEmpty else { throw WilKEError.invalidRequest("the answer \"\(p.answer)\" encodes to no tokens") }
                let seq = prompt + target.dropLast()
                guard seq.count <= loaded.config.maxPositions else {
                    throw WilKEError.sequenceTooLong(length: seq.count, maxPositions: loaded.config.maxPositions)
                }
                sequences.append(seq)
                targets.append(target)
                at += target.indices.map { TokenPosition(row: row, pos: prompt.count - 1 + $0) }
            }
            let logits = try loaded.model.forward(ForwardBatch(sequences: sequences, logitsAt: at)).logits
            var k = 0
            for target in targets {
                var ok = true
                for y in target {
                    if ExactMatch.argmax(logits[k]) != y { ok = false }
                    k += 1
                }
                out.append(ok)
            }
            start += chunk.count
        }
        return out
    }

    /// Index of the largest value, the first on ties (torch.argmax).
    public static func argmax(_ row: [Float]) -> Int {
        precondition(!row.isEmpty)
        var best = 0
        for i in 1..<row.count where row[i] > row[best] { best = i }
        return best
    }

    /// ES, GS and LS of one record on the model as it is now.
    public func scores(_ r: EditRequest) throws -> EditScores {
        var probes = [Probe(prompt: r.filledPrompt, answer: r.targetNew)]
        probes += r.paraphrasePrompts.map { Probe(prompt: $0, answer: r.targetNew) }
        if let answer = r.neighborhoodAnswer {
            probes += r.neighborhoodPrompts.map { Probe(prompt: $0, answer: answer) }
        }
        let m = try matches(probes)
        let para = Array(m[1 ..< 1 + r.paraphrasePrompts.count])
        let neigh = Array(m[(1 + r.paraphrasePrompts.count)...])
        return EditScores(rewrite: m[0], paraphrases: para, neighbours: neigh)
    }

    /// Fraction of facts whose ORIGINAL object (target_true) the rewrite prompt still yields exactly
    /// (ERS over the edited facts, ORS over the held-out ones); facts without target_true count as lost.
    public func retention(_ facts: [EditRequest]) throws -> Double {
        guard !facts.isEmpty else { return 0 }
        let known = facts.filter { $0.targetTrue != nil }
        let m = try matches(known.map { Probe(prompt: $0.filledPrompt, answer: $0.targetTrue!) })
        return Double(m.filter { $0 }.count) / Double(facts.count)
    }

    /// The facts the model answers with target_true (the "known" filter of §4.1), in order.
    public func known(_ facts: [EditRequest]) throws -> [EditRequest] {
        let candidates = facts.filter { $0.targetTrue != nil }
        let m = try matches(candidates.map { Probe(prompt: $0.filledPrompt, answer: $0.targetTrue!) })
        return zip(candidates, m).filter { $0.1 }.map { $0.0 }
    }
}
