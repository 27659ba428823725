import Foundation
import Formats

/// Reads edit requests from JSONL (`{prompt, subject, target_new[, target_true]}` per line), the full
/// CounterFact format (`requested_rewrite`, paraphrase and neighbourhood prompts) or the reduced
/// KnowEdit format (`prompt` with the subject filled in, `ground_truth`, `rephrase_prompt`,
/// `locality_prompt`), detected from the content.
public enum RequestFile {
    public enum Kind: String, Sendable { case jsonl, counterfact, knowedit }

    public struct Loaded: Sendable {
        public var kind: Kind
        public var requests: [EditRequest]
        /// Records skipped with `lenient`: (0-based index, reason).
        public var skipped: [(index: Int, reason: String)]
    }

    /// - Parameter lenient: skip malformed records (reported in `skipped`) instead of failing on the first.
    public static func load(path: String, lenient: Bool = false) throws -> Loaded {
        // FileAccess: a FIFO or device given as --requests is refused at once instead of hanging.
        let data = try FileAccess.read(path)
        return try parse(data, source: path, lenient: lenient)
    }

    public static func parse(_ data: Data, source: String, lenient: Bool = false) throws -> Loaded {
        let text = String(decoding: data, as: UTF8.self)
        let records: [Any]
        let kind: Kind
        if text.drop(while: { $0.isWhitespace }).first == "[" {
            guard let array = (try? JSONSerialization.jsonObject(with: data)) as? [Any] else {
                throw WilKEError.invalidRequestFile(path: source, reason: "not a JSON array")
            }
            records = array
            let first = array.first as? [String: Any]
            kind = first?["requested_rewrite"] != nil ? .counterfact : (first?["ground_truth"] != nil ? .knowedit : .jsonl)
        } else {
            var lines: [Any] = []
            for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                let trimmed = line.trimmingCharacters(in: .whitespaces)
                if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
                guard let obj = try? JSONSerialization.jsonObject(with: Data(trimmed.utf8)) else {
                    if lenient { lines.append(NSNull()); continue }
                    throw WilKEError.invalidRequestFile(path: source, reason: "line \(i + 1) is not valid JSON")
                }
                lines.append(obj)
            }
            records = lines
            kind = .jsonl
        }
        var out = Loaded(kind: kind, requests: [], skipped: [])
        for (i, rec) in records.enumerated() {
            do {
                guard let obj = rec as? [String: Any] else { throw WilKEError.invalidRequest("not a JSON object") }
                let r = try request(from: obj, kind: kind)
                try r.validate()
                out.requests.append(r)
            } catch {
                let reason = (error as? WilKEError)?.description ?? "\(error)"
                if !lenient { throw WilKEError.invalidRequestFile(path: source, reason: "record \(i): \(reason)") }
                out.skipped.append((i, reason))
            }
        }
        return out
    }

    static func string(_ v: Any?) -> String? {
        if let s = v as? String { return s }
        if let d = v as? [String: Any] { return d["str"] as? String }
        return nil
    }

    static func request(from o: [String: Any], kind: Kind) throws -> EditRequest {
        switch kind {
        case .counterfact:
            guard let rw = o["requested_rewrite"] as? [String: Any], let prompt = rw["prompt"] as? String,
                  let subject = rw["subject"] as? String, let new = string(rw["target_new"]) else {
                throw WilKEError.invalidRequest("requested_rewrite needs prompt, subject and target_new")
            }
            return EditRequest(prompt: prompt, subject: subject, targetNew: new, targetTrue: string(rw["target_true"]),
                               caseID: o["case_id"] as? Int, relationID: rw["relation_id"] as? String,
                               paraphrasePrompts: o["paraphrase_prompts"] as? [String] ?? [],
                               neighborhoodPrompts: o["neighborhood_prompts"] as? [String] ?? [],
                               neighborhoodAnswer: string(rw["target_true"]))
        case .knowedit:
            guard let filled = o["prompt"] as? String, let subject = o["subject"] as? String,
                  let new = string(o["target_new"]) else {
                throw WilKEError.invalidRequest("needs prompt, subject and target_new")
            }
            guard let range = filled.range(of: subject) else {
                throw WilKEError.invalidRequest("subject \"\(subject)\" not found in prompt \"\(filled)\"")
            }
            // The first occurrence becomes the hole (ALGORITHM.md §5.2).
            let prompt = filled.replacingCharacters(in: range, with: "{}")
            return EditRequest(prompt: prompt, subject: subject, targetNew: new, targetTrue: string(o["ground_truth"]),
                               caseID: o["case_id"] as? Int,
                               paraphrasePrompts: (o["rephrase_prompt"] as? String).map { [$0] } ?? [],
                               neighborhoodPrompts: (o["locality_prompt"] as? String).map { [$0] } ?? [],
                               neighborhoodAnswer: string(o["locality_ground_truth"]))
        case .jsonl:
            guard let prompt = o["prompt"] as? String, let subject = o["subject"] as? String,
                  let new = string(o["target_new"] ?? o["target"]) else {
                throw WilKEError.invalidRequest("needs prompt, subject and target_new")
            }
            var p = prompt
            if !p.contains("{}") {
                // Accept a filled prompt too: the subject's first occurrence becomes the hole.
                guard let range = p.range(of: subject) else {
                    throw WilKEError.invalidRequest("prompt \"\(prompt)\" has no \"{}\" and does not contain the subject \"\(subject)\"")
                }
                p = p.replacingCharacters(in: range, with: "{}")
            }
            return EditRequest(prompt: p, subject: subject, targetNew: new, targetTrue: string(o["target_true"]),
                               caseID: o["case_id"] as? Int, relationID: o["relation_id"] as? String,
                               paraphrasePrompts: o["paraphrase_prompts"] as? [String] ?? [],
                               neighborhoodPrompts: o["neighborhood_prompts"] as? [String] ?? [],
                               neighborhoodAnswer: string(o["neighborhood_answer"]) ?? string(o["target_true"]))
        }
    }
}
