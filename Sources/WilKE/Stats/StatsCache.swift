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

    /// The statistics file's path without `.wstats`: the factor and null-space files sit beside it.
    func stem(for key: StatsKey) -> String {
        directory + "/" + (key.fileName.hasSuffix(".wstats") ? String(key.fileName.dropLast(7)) : key.fileName)
    }

    /// The statistics under `key`. - keepMoment: keep C beside its factor (see `KeyCovariance`); without
    /// it the file is read straight into the triangle that is factored in place (re-read for a ridge retry).
    /// Without the moment, a valid factor file (`FactorCache.swift`) is read instead of factoring C; a
    /// factor computed here is stored for the next caller (best effort: a read-only cache still works).
    public func load(_ key: StatsKey, keepMoment: Bool = true) -> CacheLookup {
        let path = path(for: key)
        guard FileManager.default.fileExists(atPath: path) else { return .missing }
        if !keepMoment, let cov = loadFactor(key) { return .hit(cov) }
        var packed: (count: Int, values: [Double])
        do {
            packed = try readPacked(key)
        } catch let WilKEError.io(_, reason) {
            return .rejected(reason)
        } catch {
            return .rejected("\(error)")
        }
        // The tuple must let go of the triangle before it is factored: a second reference makes the factor's
        // in-place write copy it first (0.77 GiB more at d_ff = 14,336, the 8B edit's peak).
        let count = packed.count
        let values = packed.values
        packed = (0, [])
        do {
            let cov = try KeyCovariance(layer: key.layer, count: count, packed: consume values, keepMoment: keepMoment,
                                        reload: { try self.readPacked(key).values })
            try? storeFactor(cov, key: key)
            return .hit(cov)
        } catch {
            return .rejected("\(error)")
        }
    }

    /// The factored statistics under `key` (C dropped), for one solve: throws `WilKEError.io` naming the
    /// file when it is missing, truncated or corrupt.
    public func covariance(_ key: StatsKey) throws -> KeyCovariance {
        switch load(key, keepMoment: false) {
        case .hit(let cov): return cov
        case .missing: throw WilKEError.io(path: path(for: key), reason: "the statistics file is missing")
        case .rejected(let why): throw WilKEError.io(path: path(for: key), reason: why)
        }
    }

    /// Writes `cov` under `key` atomically (replacing any existing file) and returns its path.
    /// `beforeCommit` runs after the bytes are written and before the rename (tests simulate a crash there).
    @discardableResult
    public func store(_ cov: KeyCovariance, key: StatsKey, beforeCommit: () throws -> Void = {}) throws -> String {
        precondition(cov.layer == key.layer)
        guard let packed = cov.packedMoment else { preconditionFailure("storing a covariance needs its moment (keepMoment)") }
        return try store(packed: packed, count: cov.count, key: key, beforeCommit: beforeCommit)
    }

    /// Writes the packed moment (upper triangle row by row, already divided by `count`) under `key`.
    @discardableResult
    public func store(packed: [Double], count: Int, key: StatsKey, beforeCommit: () throws -> Void = {}) throws -> String {
        let dim = KeyCovariance.triangleSide(packed.count)
        precondition(dim * (dim + 1) / 2 == packed.count, "the packed moment is not a triangle")
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw WilKEError.io(path: directory, reason: "cannot create the statistics cache directory")
        }
        removeStaleTemps()
        let path = path(for: key)
        // The upper triangle row by row is exactly the packed array.
        try writeHashed(path: path, magic: Self.magic, header: Self.header(key: key, dim: dim, count: count),
                        payloads: [packed], beforeCommit: beforeCommit)
        return path
    }

    /// Writes `magic`, the header's u64 length, the header, zero padding to 8 bytes, the payloads' f64s and
    /// the SHA-256 of all of it to `path` atomically (the layout of `.wstats` and `.wchol` files), in
    /// 64 MiB pieces: a 0.77 GiB triangle is never copied whole.
    func writeHashed(path: String, magic: [UInt8], header: [UInt8], payloads: [[Double]],
                     beforeCommit: () throws -> Void = {}) throws {
        let out = try OutputFile(path: path, overwrite: true)
        do {
            var hash = SHA256()
            func emit(_ bytes: UnsafeRawBufferPointer) throws {
                hash.update(bufferPointer: bytes)
                try out.write(bytes)
            }
            var w = ByteWriter()
            w.write(bytes: magic)
            w.write(UInt64(header.count))
            w.write(bytes: header)
            w.pad(toMultipleOf: 8)
            try w.bytes.withUnsafeBytes { try emit($0) }
            for p in payloads { try p.withUnsafeBytes { try emitPieces($0, emit) } }
            try Array(hash.finalize()).withUnsafeBytes { try out.write($0) }
            try beforeCommit()
            try out.commit()
        } catch {
            out.discard()
            throw error
        }
    }

    static func header(key: StatsKey, dim: Int, count: Int) -> [UInt8] {
        let fields: [String: Any] = ["format": 1, "layer": key.layer, "dim": dim, "count": count, "tokens": key.tokens,
                                     "maxLength": key.maxLength, "fingerprint": key.fingerprint, "corpus": key.corpus]
        let data = try! JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys])
        return Array(data)
    }

    /// (count, packed moment) of the file for `key`, read in pieces straight into the triangle (no copy of
    /// the file in memory) while its SHA-256 is checked. Throws `WilKEError.io` naming what is wrong.
    func readPacked(_ key: StatsKey) throws -> (count: Int, values: [Double]) {
        func bad(_ why: String) -> WilKEError { .io(path: key.fileName, reason: why) }
        let path = path(for: key)
        guard let fh = FileHandle(forReadingAtPath: path) else { throw bad("unreadable") }
        defer { try? fh.close() }
        let size = Int((try? fh.seekToEnd()) ?? 0)
        try? fh.seek(toOffset: 0)
        guard size >= 48 else { throw bad("the file is truncated") }
        var hash = SHA256()
        func read(_ n: Int) throws -> [UInt8] {
            // FileHandle reads nothing (nil) for a count of 0: a header ending on an 8-byte boundary has no padding.
            guard n > 0 else { return [] }
            guard let d = try? fh.read(upToCount: n), d.count == n else { throw bad("the file is truncated") }
            let b = Array(d)
            hash.update(data: b)
            return b
        }
        guard try read(8) == Self.magic else { throw bad("not a statistics file") }
        let hl = try read(8).withUnsafeBytes { Int(UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self))) }
        guard hl > 0, 16 + hl + 32 <= size else { throw bad("the header is malformed") }
        let json = try? JSONSerialization.jsonObject(with: Data(try read(hl))) as? [String: Any]
        guard let json, json["format"] as? Int == 1, let dim = json["dim"] as? Int, let count = json["count"] as? Int,
              dim > 0, count > 0 else { throw bad("the header is malformed") }
        guard json["layer"] as? Int == key.layer, json["fingerprint"] as? String == key.fingerprint,
              json["corpus"] as? String == key.corpus, json["tokens"] as? Int == key.tokens,
              json["maxLength"] as? Int == key.maxLength else { throw bad("the header is for another key") }
        let start = alignUp(16 + hl, 8)
        _ = try read(start - 16 - hl)
        let n = dim * (dim + 1) / 2
        guard size - start - 32 == n * 8 else { throw bad("the payload size does not match the header") }
        var values = [Double](repeating: 0, count: n)
        guard values.withUnsafeMutableBytes({ readPieces(fh, into: $0, &hash) }) else { throw bad("the file is truncated") }
        guard let tail = try? fh.read(upToCount: 32), Array(tail) == Array(hash.finalize()) else {
            throw bad("the checksum does not match (truncated or corrupt file)")
        }
        // Little-endian on disk; every platform this builds for is little-endian.
        return (count, values)
    }

    /// Removes temp files of writers that no longer run (killed mid-write); live writers' temps stay.
    func removeStaleTemps() {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return }
        for name in names where name.hasPrefix(".") && (name.contains(".wstats.tmp-") || name.contains(".wchol.tmp-")) {
            let fields = name.split(separator: "-")
            guard fields.count >= 2, let pid = Int32(fields[fields.count - 2]) else { continue }
            if kill(pid, 0) != 0 && errno == ESRCH { unlink(directory + "/" + name) }
        }
    }
}
