import Crypto
import Foundation

/// Where the statistics' tokens come from: a user corpus file, or text the model samples itself.
public enum StatsCorpus: Sendable, Equatable {
    /// `.jsonl`: one JSON object per line with a string "text" field (blank lines skipped); any other
    /// extension: plain text, one document per blank-line-separated paragraph block.
    case file(String)
    /// Documents sampled from the model with this seed (recipe: `TextSampler`).
    case sampled(seed: UInt64)

    /// Identity of the token source for the cache: "file-" + the first 16 hex digits of the file's SHA-256
    /// (contents, not the path: a moved file still hits, an edited one misses), or
    /// "sampled-v<recipe>-k<top-k>-s<seed>".
    public func identity() throws -> String {
        switch self {
        case .file(let path):
            let data = try CorpusReader.read(path)
            return "file-" + SHA256.hash(data: data).prefix(8).map { String(format: "%02x", $0) }.joined()
        case .sampled(let seed):
            return "sampled-v\(TextSampler.recipeVersion)-k\(TextSampler.topK)-s\(seed)"
        }
    }
}

/// Parses corpus files into documents (strings); tokenization and truncation happen later.
public enum CorpusReader {
    public static func documents(path: String) throws -> [String] {
        let data = try read(path)
        guard let text = String(data: data, encoding: .utf8) else {
            throw WilKEError.invalidCorpus(path: path, reason: "the file is not valid UTF-8")
        }
        return path.lowercased().hasSuffix(".jsonl") ? try jsonLines(text, path: path) : paragraphs(text)
    }

    static func read(_ path: String) throws -> Data {
        do { return try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw WilKEError.io(path: path, reason: "cannot read the corpus file")
        }
    }

    /// Blocks of non-blank lines separated by blank (whitespace-only) lines, each joined with "\n".
    public static func paragraphs(_ text: String) -> [String] {
        var docs: [String] = [], current: [Substring] = []
        // Swift reads "\r\n" as one Character, which `isNewline` covers.
        for l in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
            if l.allSatisfy(\.isWhitespace) {
                if !current.isEmpty { docs.append(current.joined(separator: "\n")); current = [] }
            } else {
                current.append(l)
            }
        }
        if !current.isEmpty { docs.append(current.joined(separator: "\n")) }
        return docs
    }

    /// The "text" field of every non-blank line; a bad line throws `invalidCorpus` naming its number (1-based).
    public static func jsonLines(_ text: String, path: String) throws -> [String] {
        var docs: [String] = []
        for (i, line) in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }).enumerated() {
            guard !line.allSatisfy(\.isWhitespace) else { continue }
            let object = try? JSONSerialization.jsonObject(with: Data(line.utf8))
            guard let record = object as? [String: Any] else {
                throw WilKEError.invalidCorpus(path: path, reason: "line \(i + 1) is not a JSON object")
            }
            guard let t = record["text"] as? String else {
                throw WilKEError.invalidCorpus(path: path, reason: "line \(i + 1) has no string \"text\" field")
            }
            if !t.isEmpty { docs.append(t) }
        }
        return docs
    }
}
