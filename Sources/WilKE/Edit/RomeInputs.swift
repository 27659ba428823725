import Foundation

/// The token-level problem one ROME edit solves (ALGORITHM.md §2.2–2.3), built from a request and the
/// context templates: the rewriting rows plus the KL row for compute_v, the key rows for compute_u,
/// the subject's last-token index in each, and where the loss reads the logits.
public struct RomeInputs: Sendable, Equatable {
    /// compute_v rows: one per template (template-formatted prompt + target minus its last token), then
    /// the KL row ("{} is a"), last.
    public var rows: [[Int]]
    /// Subject last-token index per row of `rows`.
    public var subjectIndex: [Int]
    /// Positions whose logits the loss reads, in order: every rewriting row's label positions, then the
    /// KL row's subject position.
    public var logitsAt: [TokenPosition]
    /// Per rewriting row, its target tokens and the `logitsAt` entry that predicts each.
    public var labels: [[RomeLoss.Label]]
    /// Index into `logitsAt` of the KL position.
    public var klLogitsRow: Int
    /// compute_u rows: each template formatted with the prompt, no target; row 0 is the bare prompt
    /// (template "{}"), whose key is k_c.
    public var keyRows: [[Int]]
    public var keyIndex: [Int]
    /// Target token ids (" " + target, no special tokens).
    public var target: [Int]

    public static let klPrompt = "{} is a"

    public init(request: EditRequest, templates: [String], tokenizer: any Tokenizer) throws {
        try request.validate()
        guard templates.first == "{}" else { throw WilKEError.invalidRequest("the first context template must be \"{}\"") }
        let targetText = request.targetNew.hasPrefix(" ") ? request.targetNew : " " + request.targetNew
        let target = tokenizer.encode(targetText, addSpecial: false)
        guard !target.isEmpty else { throw WilKEError.invalidRequest("the target encodes to no tokens") }
        let targetPrefix = tokenizer.decode(Array(target.dropLast()))
        var rows: [[Int]] = [], index: [Int] = [], keyRows: [[Int]] = [], keyIndex: [Int] = []
        for t in templates {
            let holed = t.replacingOccurrences(of: "{}", with: request.prompt)
            let (ids, idx) = try RomeInputs.tokenize(holed + targetPrefix, subject: request.subject, tokenizer)
            rows.append(ids); index.append(idx)
            let (kIDs, kIdx) = try RomeInputs.tokenize(holed, subject: request.subject, tokenizer)
            keyRows.append(kIDs); keyIndex.append(kIdx)
        }
        let (klIDs, klIdx) = try RomeInputs.tokenize(RomeInputs.klPrompt, subject: request.subject, tokenizer)
        try self.init(rewriteRows: rows, rewriteIndex: index, target: target, klRow: klIDs, klIndex: klIdx,
                      keyRows: keyRows, keyIndex: keyIndex)
    }

    /// The token-level problem. Each rewriting row ends with the target minus its last token; its
    /// labels sit at the last |target| positions (the position whose logits predict each token).
    public init(rewriteRows: [[Int]], rewriteIndex: [Int], target: [Int], klRow: [Int], klIndex: Int,
                keyRows: [[Int]], keyIndex: [Int]) throws {
        guard !rewriteRows.isEmpty, rewriteRows.count == rewriteIndex.count, keyRows.count == keyIndex.count,
              !keyRows.isEmpty, !target.isEmpty else {
            throw WilKEError.invalidRequest("inconsistent ROME inputs")
        }
        self.target = target
        rows = []; subjectIndex = []; labels = []; logitsAt = []
        for (ids, idx) in zip(rewriteRows, rewriteIndex) {
            let start = ids.count - target.count
            guard start >= 0, idx >= 0, idx < ids.count else {
                throw WilKEError.invalidRequest("the target is longer than the prompt")
            }
            var rowLabels: [RomeLoss.Label] = []
            for (k, y) in target.enumerated() {
                rowLabels.append(RomeLoss.Label(logitsRow: logitsAt.count, token: y))
                logitsAt.append(TokenPosition(row: rows.count, pos: start + k))
            }
            rows.append(ids); subjectIndex.append(idx); labels.append(rowLabels)
        }
        klLogitsRow = logitsAt.count
        logitsAt.append(TokenPosition(row: rows.count, pos: klIndex))
        rows.append(klRow); subjectIndex.append(klIndex)
        self.keyRows = keyRows
        self.keyIndex = keyIndex
    }

    /// Tokens of `holed` with "{}" replaced by the subject, and the subject's last-token index computed
    /// as the reference does: prefix and subject tokenized separately (after a non-empty prefix, whose
    /// trailing space is stripped, the subject is tokenized as " " + subject).
    static func tokenize(_ holed: String, subject: String, _ tok: any Tokenizer) throws -> ([Int], Int) {
        guard let hole = holed.range(of: "{}") else { throw WilKEError.invalidRequest("no \"{}\" in \"\(holed)\"") }
        let prefix = String(holed[..<hole.lowerBound])
        let ids = tok.encode(holed.replacingCharacters(in: hole, with: subject), addSpecial: true)
        let idx: Int
        if prefix.isEmpty {
            idx = tok.encode(subject.trimmingCharacters(in: .whitespaces), addSpecial: true).count - 1
        } else {
            guard prefix.hasSuffix(" ") else {
                throw WilKEError.invalidRequest("the text before the subject must end with a space: \"\(prefix)\"")
            }
            idx = tok.encode(String(prefix.dropLast()), addSpecial: true).count
                + tok.encode(" " + subject.trimmingCharacters(in: .whitespaces), addSpecial: false).count - 1
        }
        guard idx >= 0, idx < ids.count else {
            throw WilKEError.invalidRequest("the subject \"\(subject)\" does not tokenize inside \"\(holed)\"")
        }
        return (ids, idx)
    }
}
