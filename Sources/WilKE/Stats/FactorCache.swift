import Crypto
import Foundation
import Formats

/// The Cholesky factor of a layer's key statistics, cached beside its `.wstats` file, so an edit reads
/// L instead of factoring C again. Factoring is the one step of an edit whose cost grows with d_ff³
/// (the 8B shape's d_ff = 14,336: minutes of packed dpptrf within the edit's memory budget), and it is
/// the same for every edit of a model: `wilke stats` (or the edit that computes missing statistics)
/// pays it once, and the Scale bench counts it with the statistics, not with the edit.
///
/// File `<stats file name without .wstats>.wchol` (little-endian):
///   0   8  magic "WKCHOL01"
///   8   8  u64 H, the header length
///   16  H  JSON header {"format":1,"layer","dim","count","ridge","moment","fingerprint","corpus","tokens","maxLength"}
///   …      zero padding to a multiple of 8
///   …      dim f64: diag(C)
///   …      dim·(dim+1)/2 f64: L, packed as `KeyCovariance` holds it (C + λI = L·Lᵀ, λ = ridge)
///   end-32 SHA-256 of every preceding byte
/// "moment" is the hex SHA-256 the `.wstats` file ends with: a factor of other statistics (recomputed,
/// or replaced by another writer) is never used. Any disagreement means the factor is computed again.
extension StatsCache {
    static let factorMagic = Array("WKCHOL01".utf8)

    public func factorPath(for key: StatsKey) -> String { stem(for: key) + ".wchol" }

    /// The trailing SHA-256 of the statistics file under `key` (hex), read without reading the file.
    func momentDigest(_ key: StatsKey) -> String? {
        guard let fh = FileHandle(forReadingAtPath: path(for: key)) else { return nil }
        defer { try? fh.close() }
        guard let size = try? fh.seekToEnd(), size >= 48, (try? fh.seek(toOffset: size - 32)) != nil,
              let tail = try? fh.read(upToCount: 32), tail.count == 32 else { return nil }
        return tail.map { String(format: "%02x", $0) }.joined()
    }

    /// Writes `cov`'s factor for the statistics file under `key` (which must exist), atomically.
    public func storeFactor(_ cov: KeyCovariance, key: StatsKey) throws {
        guard let moment = momentDigest(key) else {
            throw WilKEError.io(path: path(for: key), reason: "the statistics file is missing")
        }
        let fields: [String: Any] = ["format": 1, "layer": key.layer, "dim": cov.dim, "count": cov.count,
                                     "ridge": "\(cov.ridge)", "moment": moment, "fingerprint": key.fingerprint,
                                     "corpus": key.corpus, "tokens": key.tokens, "maxLength": key.maxLength]
        let head = Array(try! JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys]))
        try writeHashed(path: factorPath(for: key), magic: Self.factorMagic, header: head, payloads: [cov.diagonal, cov.factor])
    }

    /// The factored statistics from the factor file under `key`, or nil when it is missing, corrupt, or
    /// not the factor of the current statistics file.
    func loadFactor(_ key: StatsKey) -> KeyCovariance? {
        guard let moment = momentDigest(key), let fh = FileHandle(forReadingAtPath: factorPath(for: key)) else { return nil }
        defer { try? fh.close() }
        guard let size = try? fh.seekToEnd(), size >= 48, (try? fh.seek(toOffset: 0)) != nil else { return nil }
        var hash = SHA256()
        func read(_ n: Int) -> [UInt8]? {
            guard n > 0 else { return [] }
            guard let d = try? fh.read(upToCount: n), d.count == n else { return nil }
            let b = Array(d)
            hash.update(data: b)
            return b
        }
        guard read(8) == Self.factorMagic, let hb = read(8) else { return nil }
        let hl = hb.withUnsafeBytes { Int(UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self))) }
        guard hl > 0, 16 + hl + 32 <= Int(size), let hj = read(hl),
              let json = try? JSONSerialization.jsonObject(with: Data(hj)) as? [String: Any],
              json["format"] as? Int == 1, json["layer"] as? Int == key.layer, json["moment"] as? String == moment,
              json["fingerprint"] as? String == key.fingerprint, json["corpus"] as? String == key.corpus,
              json["tokens"] as? Int == key.tokens, json["maxLength"] as? Int == key.maxLength,
              let dim = json["dim"] as? Int, let count = json["count"] as? Int, dim > 0, count > 0,
              let ridgeText = json["ridge"] as? String, let ridge = Double(ridgeText) else { return nil }
        let start = alignUp(16 + hl, 8)
        let n = dim * (dim + 1) / 2
        guard read(start - 16 - hl) != nil, Int(size) - start - 32 == (dim + n) * 8 else { return nil }
        var diagonal = [Double](repeating: 0, count: dim), factor = [Double](repeating: 0, count: n)
        guard diagonal.withUnsafeMutableBytes({ readPieces(fh, into: $0, &hash) }),
              factor.withUnsafeMutableBytes({ readPieces(fh, into: $0, &hash) }),
              let tail = try? fh.read(upToCount: 32), Array(tail) == Array(hash.finalize()) else { return nil }
        return KeyCovariance(layer: key.layer, count: count, diagonal: diagonal, ridge: ridge, factor: factor)
    }
}

/// Hands `bytes` to `emit` in 64 MiB pieces.
func emitPieces(_ bytes: UnsafeRawBufferPointer, _ emit: (UnsafeRawBufferPointer) throws -> Void) throws {
    var o = 0
    while o < bytes.count {
        let n = min(64 << 20, bytes.count - o)
        try emit(UnsafeRawBufferPointer(rebasing: bytes[o..<(o + n)]))
        o += n
    }
}

/// Fills `dst` from `fh` in 64 MiB pieces, hashing what it reads; false when the file ends first.
func readPieces(_ fh: FileHandle, into dst: UnsafeMutableRawBufferPointer, _ hash: inout SHA256) -> Bool {
    var o = 0
    while o < dst.count {
        let m = min(64 << 20, dst.count - o)
        guard let d = try? fh.read(upToCount: m), d.count == m else { return false }
        d.withUnsafeBytes { src in
            hash.update(bufferPointer: src)
            dst.baseAddress!.advanced(by: o).copyMemory(from: src.baseAddress!, byteCount: m)
        }
        o += m
    }
    return true
}
