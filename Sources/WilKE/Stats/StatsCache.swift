import Crypto
import Foundation
import Formats
#if canImport(Glibc)
import Glibc
#endif

/// What one cached statistics file stands for. Two runs with equal keys compute the same moment.
public struct StatsKey: Hashable, Sendable {
    public var layer: Int
    /// `ModelFingerprint.layers[layer]` (64 hex digits) or any identity the caller chooses.
    public var fingerprint: String
    /// `StatsCorpus.identity()`.
    public var corpus: String
    /// The requested token budget (the file also records the tokens actually seen).
    public var tokens: Int
    /// Documents were cut to this many tokens.
    public var maxLength: Int

    public init(layer: Int, fingerprint: String, corpus: String, tokens: Int, maxLength: Int) {
        self.layer = layer; self.fingerprint = fingerprint; self.corpus = corpus
        self.tokens = tokens; self.maxLength = maxLength
    }

    /// `L12-<16 hex of the fingerprint>-<corpus>-n16384-m256.wstats`; the full key is checked inside.
    public var fileName: String {
        "L\(layer)-\(fingerprint.prefix(16))-\(corpus)-n\(tokens)-m\(maxLength).wstats"
    }
}

/// The outcome of looking a key up.
public enum CacheLookup {
    case hit(KeyCovariance)
    case missing
    /// The file exists but is truncated, corrupt or for another key; it must be recomputed (the reason says why).
    case rejected(String)
}

/// One `.wstats` file per `StatsKey` in a directory (default `$WILKE_CACHE/stats`, else `~/.cache/wilke/stats`).
///
/// File layout (little-endian):
///   0   8  magic "WKSTATS1"
///   8   8  u64 H, the header length
///   16  H  JSON header {"format":1,"layer","dim","count","tokens","maxLength","fingerprint","corpus"}
///   …      zero padding to a multiple of 8
///   …      dim·(dim+1)/2 f64: the moment's upper triangle, row by row (row i holds columns i..<dim)
///   end-32 SHA-256 of every preceding byte
/// Files are written to a temp file, fsynced and renamed (`OutputFile`), so a reader sees a whole file
/// or none; a file whose checksum, length or header disagrees is rejected, never used.
public final class StatsCache: @unchecked Sendable {
    public let directory: String
    static let magic = Array("WKSTATS1".utf8)

    public init(directory: String = StatsCache.defaultDirectory) { self.directory = directory }

    public static var defaultDirectory: String {
        let env = ProcessInfo.processInfo.environment
        let root = env["WILKE_CACHE"].flatMap { $0.isEmpty ? nil : $0 } ?? (NSHomeDirectory() + "/.cache/wilke")
        return root + "/stats"
    }

    public func path(for key: StatsKey) -> String { directory + "/" + key.fileName }

    public func load(_ key: StatsKey) -> CacheLookup {
        let path = path(for: key)
        guard FileManager.default.fileExists(atPath: path) else { return .missing }
        guard let data = try? Data(contentsOf: URL(fileURLWithPath: path)) else { return .rejected("unreadable") }
        do {
            return .hit(try data.withUnsafeBytes { try Self.decode($0, key: key) })
        } catch {
            return .rejected("\(error)")
        }
    }

    /// Writes `cov` under `key` atomically (replacing any existing file) and returns its path.
    /// `beforeCommit` runs after the bytes are written and before the rename (tests simulate a crash there).
    @discardableResult
    public func store(_ cov: KeyCovariance, key: StatsKey, beforeCommit: () throws -> Void = {}) throws -> String {
        precondition(cov.layer == key.layer)
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw WilKEError.io(path: directory, reason: "cannot create the statistics cache directory")
        }
        removeStaleTemps()
        let path = path(for: key)
        let out = try OutputFile(path: path, overwrite: true)
        do {
            var hash = SHA256()
            func emit(_ bytes: UnsafeRawBufferPointer) throws {
                hash.update(bufferPointer: bytes)
                try out.write(bytes)
            }
            let header = Self.header(key: key, dim: cov.dim, count: cov.count)
            var w = ByteWriter()
            w.write(bytes: Self.magic)
            w.write(UInt64(header.count))
            w.write(bytes: header)
            w.pad(toMultipleOf: 8)
            try w.bytes.withUnsafeBytes { try emit($0) }
            // The upper triangle, one row at a time (rows are contiguous in the row-major moment).
            let n = cov.dim
            try cov.moment.withUnsafeBufferPointer { m in
                for i in 0..<n {
                    try emit(UnsafeRawBufferPointer(start: m.baseAddress! + i * n + i, count: (n - i) * 8))
                }
            }
            try Array(hash.finalize()).withUnsafeBytes { try out.write($0) }
            try beforeCommit()
            try out.commit()
        } catch {
            out.discard()
            throw error
        }
        return path
    }

    static func header(key: StatsKey, dim: Int, count: Int) -> [UInt8] {
        let fields: [String: Any] = ["format": 1, "layer": key.layer, "dim": dim, "count": count, "tokens": key.tokens,
                                     "maxLength": key.maxLength, "fingerprint": key.fingerprint, "corpus": key.corpus]
        let data = try! JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys])
        return Array(data)
    }

    static func decode(_ raw: UnsafeRawBufferPointer, key: StatsKey) throws -> KeyCovariance {
        func bad(_ why: String) -> WilKEError { .io(path: key.fileName, reason: why) }
        guard raw.count >= 48 else { throw bad("the file is truncated") }
        let body = UnsafeRawBufferPointer(rebasing: raw[0..<(raw.count - 32)])
        guard Array(SHA256.hash(data: body)) == Array(raw[(raw.count - 32)...]) else {
            throw bad("the checksum does not match (truncated or corrupt file)")
        }
        var r = ByteReader(body)
        guard Array(try r.readBytes(8)) == magic else { throw bad("not a statistics file") }
        let h = try r.readLength()
        let json = try JSONSerialization.jsonObject(with: Data(try r.readBytes(h))) as? [String: Any]
        guard let json, json["format"] as? Int == 1, let dim = json["dim"] as? Int, let count = json["count"] as? Int,
              dim > 0, count > 0 else { throw bad("the header is malformed") }
        guard json["layer"] as? Int == key.layer, json["fingerprint"] as? String == key.fingerprint,
              json["corpus"] as? String == key.corpus, json["tokens"] as? Int == key.tokens,
              json["maxLength"] as? Int == key.maxLength else { throw bad("the header is for another key") }
        try r.skip(alignUp(r.offset, 8) - r.offset)
        guard r.remaining == dim * (dim + 1) / 2 * 8 else { throw bad("the payload size does not match the header") }
        var m = [Double](repeating: 0, count: dim * dim)
        for i in 0..<dim {
            for j in i..<dim {
                let v = try r.readDouble()
                m[i * dim + j] = v
                m[j * dim + i] = v
            }
        }
        return try KeyCovariance(layer: key.layer, count: count, moment: m)
    }

    /// Removes temp files of writers that no longer run (killed mid-write); live writers' temps stay.
    func removeStaleTemps() {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return }
        for name in names where name.hasPrefix(".") && name.contains(".wstats.tmp-") {
            let fields = name.split(separator: "-")
            guard fields.count >= 2, let pid = Int32(fields[fields.count - 2]) else { continue }
            if kill(pid, 0) != 0 && errno == ESRCH { unlink(directory + "/" + name) }
        }
    }
}
