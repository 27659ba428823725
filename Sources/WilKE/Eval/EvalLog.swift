import Crypto
import Foundation
import Formats

/// What makes two evaluation runs the same run: a resumed run must match the stored one field by field.
public struct EvalConfig: Codable, Equatable, Sendable {
    public var modelPath: String
    /// SHA-256 over every tensor's name, dtype, shape and stored bytes.
    public var modelSHA256: String
    public var dataPath: String
    public var dataSHA256: String
    public var edits: Int
    public var seed: UInt64
    public var method: EditMethod
    public var layer: Int?
    public var knownFilter: Bool
    public var lenient: Bool
    public var hyperparameters: EditHyperparameters

    public init(modelPath: String, modelSHA256: String, dataPath: String, dataSHA256: String, edits: Int, seed: UInt64,
                method: EditMethod, layer: Int?, knownFilter: Bool, lenient: Bool, hyperparameters: EditHyperparameters) {
        self.modelPath = modelPath; self.modelSHA256 = modelSHA256
        self.dataPath = dataPath; self.dataSHA256 = dataSHA256
        self.edits = edits; self.seed = seed; self.method = method; self.layer = layer
        self.knownFilter = knownFilter; self.lenient = lenient; self.hyperparameters = hyperparameters
    }

    /// The fields whose values differ from `other`, by name.
    public func differences(from other: EvalConfig) -> [String] {
        var out: [String] = []
        if modelSHA256 != other.modelSHA256 { out.append("model") }
        if dataSHA256 != other.dataSHA256 { out.append("data file") }
        if edits != other.edits { out.append("edits") }
        if seed != other.seed { out.append("seed") }
        if method != other.method { out.append("method") }
        if layer != other.layer { out.append("layer") }
        if knownFilter != other.knownFilter { out.append("known filter") }
        if lenient != other.lenient { out.append("lenient") }
        // Only WilKE scans: a ROME / MEMIT run saved before the scan settings existed still resumes.
        var mine = hyperparameters
        if method != .wilke || layer != nil {
            let o = other.hyperparameters
            (mine.scanMode, mine.scanTop, mine.scanMargin) = (o.scanMode, o.scanTop, o.scanMargin)
        }
        if mine != other.hyperparameters { out.append("hyper-parameters") }
        return out
    }

    /// SHA-256 of a checkpoint's tensors (the model's identity, independent of the file's path).
    public static func modelDigest(_ c: Checkpoint) -> String {
        var h = SHA256()
        for t in c.tensors {
            h.update(data: Array("\(t.name)|\(t.dtype)|\(t.shape)|".utf8))
            h.update(bufferPointer: c.data(t))
        }
        return h.finalize().map { String(format: "%02x", $0) }.joined()
    }

    /// SHA-256 of several files' digests joined in order (an evaluation over several data files).
    public static func digest(of digests: [String]) -> String {
        SHA256.hash(data: Data(digests.joined(separator: "\n").utf8)).map { String(format: "%02x", $0) }.joined()
    }

    public static func fileDigest(_ path: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else { throw WilKEError.io(path: path, reason: "cannot read the file") }
        return SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
    }
}

/// One line of the per-edit log: the fact, where it was edited, its scores, and (at checkpoints) the
/// retention measured after its roll-back.
public struct EvalLogEntry: Codable, Equatable, Sendable {
    /// 1-based position in the edit stream.
    public var index: Int
    public var caseID: Int?
    /// The fact's text; absent in a published log (docs/results keeps no CounterFact text), which then
    /// resumes by `caseID`.
    public var prompt: String?
    public var subject: String?
    public var targetNew: String?
    public var targetTrue: String?
    public var layer: Int
    public var rollbackLayer: Int
    public var scores: EditScores
    public var ers: Double?
    public var ors: Double?
    /// Patch steps after this edit and its roll-back (the resume point in the saved patch).
    public var steps: Int
    /// Wall time of the whole entry (edit, scoring, roll-back, retention checks).
    public var seconds: Double
    /// Wall time of the edit alone and of the roll-back alone (absent in logs of older runs).
    public var editSeconds: Double? = nil
    public var rollbackSeconds: Double? = nil
    /// Frobenius norm of every MLP down-projection edited so far, after this roll-back, by layer.
    public var norms: [String: Double]? = nil
    /// WilKE: the exact LA(l) of every layer its scan optimized, and LA_est(l) of every scanned layer,
    /// by layer, before this edit (absent in logs of older runs and for other methods).
    public var relativeSizes: [String: Double]? = nil
    public var estimates: [String: Double]? = nil
}

/// The files of an evaluation directory: config.json, edits.jsonl (one fsynced line per finished edit),
/// summary.json and run.wpatch (rewritten atomically after every edit).
public struct EvalDirectory: Sendable {
    public let path: String
    public init(_ path: String) { self.path = path }

    public var configPath: String { path + "/config.json" }
    public var logPath: String { path + "/edits.jsonl" }
    public var summaryPath: String { path + "/summary.json" }
    public var patchPath: String { path + "/run.wpatch" }

    static func encode<T: Encodable>(_ value: T, pretty: Bool = false) throws -> [UInt8] {
        let e = JSONEncoder()
        e.outputFormatting = pretty ? [.sortedKeys, .prettyPrinted] : [.sortedKeys]
        return Array(try e.encode(value))
    }

    public func create() throws {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw WilKEError.io(path: path, reason: "cannot create the directory")
        }
    }

    public func readConfig() throws -> EvalConfig? {
        guard let data = FileManager.default.contents(atPath: configPath) else { return nil }
        do { return try JSONDecoder().decode(EvalConfig.self, from: data) } catch {
            throw WilKEError.io(path: configPath, reason: "not a valid evaluation config")
        }
    }

    public func writeAtomically(_ bytes: [UInt8], to file: String) throws {
        let out = try OutputFile(path: file, overwrite: true)
        try out.write(bytes)
        try out.commit()
    }

    public func writeConfig(_ c: EvalConfig) throws {
        try writeAtomically(try EvalDirectory.encode(c, pretty: true), to: configPath)
    }

    /// The scores at each checkpoint reached, from summary.json (what `wilke compare` overlays).
    public func readCheckpoints() throws -> [CheckpointScores] {
        struct Scores: Decodable { var checkpoints: [CheckpointScores] }
        guard let data = FileManager.default.contents(atPath: summaryPath) else {
            throw WilKEError.io(path: summaryPath, reason: "missing: not an evaluation directory, or no edit finished yet")
        }
        do { return try JSONDecoder().decode(Scores.self, from: data).checkpoints } catch {
            throw WilKEError.io(path: summaryPath, reason: "not a valid evaluation summary")
        }
    }

    /// The logged entries; a torn last line (a crash mid-append) is dropped, any other bad line fails.
    public func readLog() throws -> [EvalLogEntry] {
        guard let data = FileManager.default.contents(atPath: logPath) else { return [] }
        let text = String(decoding: data, as: UTF8.self)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        var out: [EvalLogEntry] = []
        for (i, line) in lines.enumerated() where !line.isEmpty {
            do {
                out.append(try JSONDecoder().decode(EvalLogEntry.self, from: Data(line.utf8)))
            } catch {
                if i == lines.count - 1 { break }
                throw WilKEError.io(path: logPath, reason: "line \(i + 1) is not a valid log entry")
            }
        }
        for (i, e) in out.enumerated() where e.index != i + 1 {
            throw WilKEError.io(path: logPath, reason: "line \(i + 1) logs edit \(e.index), expected \(i + 1)")
        }
        return out
    }

    /// Rewrites the log with exactly `entries` (drops a torn line before appending again).
    public func rewriteLog(_ entries: [EvalLogEntry]) throws {
        var bytes: [UInt8] = []
        for e in entries { bytes += try EvalDirectory.encode(e) + [0x0A] }
        try writeAtomically(bytes, to: logPath)
    }

    /// Appends one line and fsyncs it, so a finished edit survives a crash.
    public func append(_ e: EvalLogEntry) throws {
        let bytes = try EvalDirectory.encode(e) + [0x0A]
        let fd = open(logPath, O_WRONLY | O_APPEND | O_CREAT, 0o644)
        guard fd >= 0 else { throw WilKEError.io(path: logPath, reason: "cannot open for appending") }
        defer { close(fd) }
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard written == bytes.count, fsync(fd) == 0 else { throw WilKEError.io(path: logPath, reason: "cannot append the entry") }
    }
}
