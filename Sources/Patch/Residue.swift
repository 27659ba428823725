// Residue encoding (docs/PATCH_FORMAT.md §5). Both kinds list sparse "units" (elements for .xor,
// quant blocks for .blocks) in increasing index order:
//
//   1. count LEB128 varints: gaps. First index = gap0; index n = index(n-1) + 1 + gap_n.
//   2. payload, count * unitBytes bytes:
//        .xor    byte-planar: byte b (little-endian) of entry n's XOR at [b*count + n]. The XORs
//                of a one-ulp miss are mostly zero bytes, and planar order puts those zeros together.
//        .blocks the original blocks, entry after entry.

extension Residue {
    /// The empty residue of the given kind.
    public static func empty(_ kind: Kind) -> Residue { Residue(kind: kind, count: 0, bytes: []) }

    /// XOR fix-ups turning `reverted` into `original` (same length, elements of `elementBytes`).
    static func xor(original: [UInt8], reverted: [UInt8], elementBytes: Int) -> Residue {
        precondition(original.count == reverted.count)
        var indices: [Int] = []
        let n = original.count / elementBytes
        original.withUnsafeBytes { o in
            reverted.withUnsafeBytes { r in
                for e in 0..<n where !memoryEqual(o.baseAddress! + e * elementBytes, r.baseAddress! + e * elementBytes, elementBytes) {
                    indices.append(e)
                }
            }
        }
        var bytes = encodeGaps(indices)
        let start = bytes.count
        bytes.append(contentsOf: repeatElement(0, count: indices.count * elementBytes))
        for (k, e) in indices.enumerated() {
            for b in 0..<elementBytes {
                bytes[start + b * indices.count + k] = original[e * elementBytes + b] ^ reverted[e * elementBytes + b]
            }
        }
        return Residue(kind: .xor, count: indices.count, bytes: bytes)
    }

    /// The original blocks of `original` wherever `rebuilt` differs (same length, `blockBytes` blocks).
    static func blocks(original: [UInt8], rebuilt: [UInt8], blockBytes: Int) -> Residue {
        precondition(original.count == rebuilt.count)
        var indices: [Int] = []
        original.withUnsafeBytes { o in
            rebuilt.withUnsafeBytes { r in
                for blk in 0..<(original.count / blockBytes)
                where !memoryEqual(o.baseAddress! + blk * blockBytes, r.baseAddress! + blk * blockBytes, blockBytes) {
                    indices.append(blk)
                }
            }
        }
        var bytes = encodeGaps(indices)
        for blk in indices { bytes.append(contentsOf: original[(blk * blockBytes)..<((blk + 1) * blockBytes)]) }
        return Residue(kind: .blocks, count: indices.count, bytes: bytes)
    }

    /// Applies the residue to `target`, a tensor of `unitBytes`-byte units.
    func apply(to target: inout [UInt8], unitBytes: Int, tensor: String) throws {
        let (indices, payload) = try entries(units: target.count / unitBytes, unitBytes: unitBytes, tensor: tensor)
        switch kind {
        case .xor:
            for (k, e) in indices.enumerated() {
                for b in 0..<unitBytes { target[e * unitBytes + b] ^= bytes[payload + b * count + k] }
            }
        case .blocks:
            for (k, blk) in indices.enumerated() {
                target.replaceSubrange((blk * unitBytes)..<((blk + 1) * unitBytes),
                                       with: bytes[(payload + k * unitBytes)..<(payload + (k + 1) * unitBytes)])
            }
        }
    }

    /// Parses the gap list; checks every index is inside the tensor and the payload size is exact.
    /// Returns the indices and where the payload starts.
    func entries(units: Int, unitBytes: Int, tensor: String) throws -> (indices: [Int], payload: Int) {
        func bad(_ reason: String) -> PatchError { .invalidResidue(tensor: tensor, reason: reason) }
        guard count >= 0, count <= units else { throw bad("\(count) entries for \(units) units") }
        var indices: [Int] = []
        indices.reserveCapacity(count)
        var pos = 0, next = 0
        for _ in 0..<count {
            var gap = 0, shift = 0
            while true {
                guard pos < bytes.count else { throw bad("gap list is truncated") }
                guard shift < 56 else { throw bad("gap varint is too long") }
                let b = bytes[pos]
                pos += 1
                gap |= Int(b & 0x7F) << shift
                shift += 7
                if b & 0x80 == 0 { break }
            }
            guard gap < units - next else { throw bad("index beyond the tensor's \(units) units") }
            indices.append(next + gap)
            next += gap + 1
        }
        guard bytes.count - pos == count * unitBytes else {
            throw bad("payload has \(bytes.count - pos) bytes, expected \(count * unitBytes)")
        }
        return (indices, pos)
    }

    private static func encodeGaps(_ indices: [Int]) -> [UInt8] {
        var out: [UInt8] = []
        var next = 0
        for e in indices {
            var gap = e - next
            next = e + 1
            while gap >= 0x80 {
                out.append(UInt8(gap & 0x7F) | 0x80)
                gap >>= 7
            }
            out.append(UInt8(gap))
        }
        return out
    }
}

@inline(__always)
private func memoryEqual(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, _ n: Int) -> Bool {
    for k in 0..<n where a.load(fromByteOffset: k, as: UInt8.self) != b.load(fromByteOffset: k, as: UInt8.self) { return false }
    return true
}
