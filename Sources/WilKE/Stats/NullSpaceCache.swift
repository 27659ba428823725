import Crypto
import Foundation
import Formats

/// The null space of a layer's key statistics, cached beside its `.wstats` file: the eigen-decomposition
/// of F = 1536 takes seconds, and WilKE's scan needs it for every candidate layer of every run.
///
/// File `<stats file name without .wstats>-t<threshold>.wnull` (little-endian):
///   0   8  magic "WKNULL01"
///   8   8  u64 H, the header length
///   16  H  JSON header {"format":1,"layer","dim","rank","threshold","fingerprint","corpus","tokens","maxLength"}
///   …      zero padding to a multiple of 8
///   …      dim f64: every eigenvalue of C, ascending
///   …      rank·dim f64: the null-space basis, one eigenvector after another
///   end-32 SHA-256 of every preceding byte
/// Written atomically like the statistics; a file that disagrees with its key in any way is recomputed.
extension StatsCache {
    static let nullSpaceMagic = Array("WKNULL01".utf8)

    public func nullSpacePath(for key: StatsKey, threshold: Double) -> String { stem(for: key) + "-t\(threshold).wnull" }

    /// The null space of the statistics under `key` below `threshold`: the cached file when it is valid,
    /// else computed from the statistics file (which must exist) and stored.
    public func nullSpace(for key: StatsKey, threshold: Double) throws -> NullSpace {
        if let cached = loadNullSpace(key, threshold: threshold) { return cached }
        let ns = try NullSpace.compute(layer: key.layer, packed: try readPacked(key).values, threshold: threshold)
        try storeNullSpace(ns, key: key)
        return ns
    }

    func header(_ ns: NullSpace, key: StatsKey) -> [UInt8] {
        let fields: [String: Any] = ["format": 1, "layer": key.layer, "dim": ns.dim, "rank": ns.rank, "threshold": "\(ns.threshold)",
                                     "fingerprint": key.fingerprint, "corpus": key.corpus, "tokens": key.tokens,
                                     "maxLength": key.maxLength]
        return Array(try! JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys]))
    }

    func storeNullSpace(_ ns: NullSpace, key: StatsKey) throws {
        let path = nullSpacePath(for: key, threshold: ns.threshold)
        let head = header(ns, key: key)
        var w = ByteWriter()
        w.write(bytes: Self.nullSpaceMagic)
        w.write(UInt64(head.count))
        w.write(bytes: head)
        w.pad(toMultipleOf: 8)
        for x in ns.eigenvalues { w.write(x) }
        for x in ns.basis { w.write(x) }
        var bytes = w.bytes
        bytes += Array(SHA256.hash(data: bytes))
        try OutputFile.write(bytes, to: path, overwrite: true)
    }

    /// The cached null space, or nil when the file is missing, corrupt or for another key.
    func loadNullSpace(_ key: StatsKey, threshold: Double) -> NullSpace? {
        guard let data = FileManager.default.contents(atPath: nullSpacePath(for: key, threshold: threshold)) else { return nil }
        let b = Array(data)
        guard b.count >= 48, Array(b[0..<8]) == Self.nullSpaceMagic,
              Array(SHA256.hash(data: b[0 ..< b.count - 32])) == Array(b[(b.count - 32)...]) else { return nil }
        let hl = b[8..<16].withUnsafeBytes { Int(UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self))) }
        guard hl > 0, 16 + hl <= b.count - 32,
              let json = try? JSONSerialization.jsonObject(with: Data(b[16 ..< 16 + hl])) as? [String: Any],
              json["format"] as? Int == 1, json["layer"] as? Int == key.layer, json["fingerprint"] as? String == key.fingerprint,
              json["corpus"] as? String == key.corpus, json["tokens"] as? Int == key.tokens,
              json["maxLength"] as? Int == key.maxLength, json["threshold"] as? String == "\(threshold)",
              let dim = json["dim"] as? Int, let rank = json["rank"] as? Int, dim > 0, rank >= 0, rank <= dim else { return nil }
        let start = alignUp(16 + hl, 8)
        guard b.count - 32 - start == (dim + rank * dim) * 8 else { return nil }
        let values: [Double] = b[start ..< b.count - 32].withUnsafeBytes { raw in
            (0 ..< dim + rank * dim).map { Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * $0, as: UInt64.self))) }
        }
        return NullSpace(layer: key.layer, dim: dim, threshold: threshold, eigenvalues: Array(values[0..<dim]),
                         basis: Array(values[dim...]))
    }
}
