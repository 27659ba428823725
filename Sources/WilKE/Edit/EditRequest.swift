import Foundation

/// One fact to write into the model: `prompt` with "{}" where the subject goes, the subject, the new
/// target, and (when known) the true target and the evaluation prompts that come with CounterFact.
public struct EditRequest: Codable, Equatable, Sendable {
    public var prompt: String
    public var subject: String
    public var targetNew: String
    public var targetTrue: String?
    public var caseID: Int?
    public var relationID: String?
    /// Paraphrases of the filled prompt (generalization, GS).
    public var paraphrasePrompts: [String]
    /// Prompts about other subjects whose answer must stay `neighborhoodAnswer` (locality, LS).
    public var neighborhoodPrompts: [String]
    /// The neighbourhood's answer: CounterFact's target_true, KnowEdit's locality_ground_truth.
    public var neighborhoodAnswer: String?

    public init(prompt: String, subject: String, targetNew: String, targetTrue: String? = nil, caseID: Int? = nil,
                relationID: String? = nil, paraphrasePrompts: [String] = [], neighborhoodPrompts: [String] = [],
                neighborhoodAnswer: String? = nil) {
        self.prompt = prompt
        self.subject = subject
        self.targetNew = targetNew
        self.targetTrue = targetTrue
        self.caseID = caseID
        self.relationID = relationID
        self.paraphrasePrompts = paraphrasePrompts
        self.neighborhoodPrompts = neighborhoodPrompts
        self.neighborhoodAnswer = neighborhoodAnswer
    }

    /// The prompt with the subject filled in.
    public var filledPrompt: String { prompt.replacingOccurrences(of: "{}", with: subject) }

    /// The same fact pushed back to its original object (the protocol's roll-back edit).
    public func swapped() -> EditRequest? {
        guard let t = targetTrue else { return nil }
        var r = self
        r.targetNew = t
        r.targetTrue = targetNew
        return r
    }

    /// Checks the request is well formed: exactly one "{}", non-empty subject and target.
    public func validate() throws {
        let holes = prompt.components(separatedBy: "{}").count - 1
        guard holes == 1 else {
            throw WilKEError.invalidRequest(holes == 0 ? "prompt \"\(prompt)\" has no \"{}\" where the subject goes"
                                                       : "prompt \"\(prompt)\" has \(holes) \"{}\" (exactly one is needed)")
        }
        guard !subject.trimmingCharacters(in: .whitespaces).isEmpty else { throw WilKEError.invalidRequest("subject is empty") }
        guard !targetNew.trimmingCharacters(in: .whitespaces).isEmpty else { throw WilKEError.invalidRequest("target is empty") }
        let prefix = prompt.components(separatedBy: "{}")[0]
        guard prefix.isEmpty || prefix.hasSuffix(" ") else {
            // ROME tokenizes the subject as " " + subject after a non-empty prefix (ALGORITHM.md §2.2).
            throw WilKEError.invalidRequest("the text before \"{}\" must end with a space (prompt \"\(prompt)\")")
        }
    }
}
