import Formats

// .wpatch byte layout (docs/PATCH_FORMAT.md §1), all integers little-endian:
//
//   1. magic            8 bytes  0x89 'W' 'P' 'A' 'T' 'C' 'H' 0x0A
//   2. major version    u16      1 (a reader refuses any other major)
//   3. minor version    u16      0 (a reader accepts any minor of its major)
//   4. frame            rest     exactly one zstd frame, content size and content checksum set, holding
//      4.1 manifest length   u64  M
//      4.2 manifest          M    canonical JSON (§2), UTF-8
//      4.3 binary area       rest for each step: U f32[rows*rank], V f32[cols*rank], residue bytes
//
// The patch id is SHA-256( u64 M0 ‖ J0 ‖ binary area ), J0 being the canonical manifest without its
// "id" member: it names the content, independent of zstd's version and level.

public enum PatchFormat {
    public static let magic: [UInt8] = [0x89, 0x57, 0x50, 0x41, 0x54, 0x43, 0x48, 0x0A]
    public static let majorVersion: UInt16 = 1
    public static let minorVersion: UInt16 = 0
    /// Bytes before the zstd frame.
    public static let preambleSize = 12
    /// Default cap on the decompressed content, so a hostile header cannot make us allocate gigabytes.
    public static let defaultMaxContentBytes = 1 << 30
}

extension Patch {
    /// The patch id: lowercase hex SHA-256 of the canonical content without the id (§3).
    public var id: String {
        let (manifest, binary) = manifestWithoutID()
        return Patch.contentID(manifest: manifest, binary: binary)
    }

    static func contentID(manifest: [String: JSONValue], binary: [UInt8]) -> String {
        Hash.sha256Hex(Patch.content(manifest: manifest, binary: binary))
    }

    private static func content(manifest: [String: JSONValue], binary: [UInt8]) -> [UInt8] {
        let json = JSONValue.object(manifest).canonicalBytes()
        var w = ByteWriter(capacity: 8 + json.count + binary.count)
        w.write(UInt64(json.count))
        w.write(bytes: json)
        w.write(bytes: binary)
        return w.bytes
    }

    /// The .wpatch bytes. Same patch, same bytes (for a given libzstd version and `level`).
    public func encode(level: Int32 = 3) throws -> [UInt8] {
        try validate()
        var (manifest, binary) = manifestWithoutID()
        manifest["id"] = .string(Patch.contentID(manifest: manifest, binary: binary))
        let content = Patch.content(manifest: manifest, binary: binary)
        var w = ByteWriter(capacity: PatchFormat.preambleSize + content.count / 2)
        w.write(bytes: PatchFormat.magic)
        w.write(PatchFormat.majorVersion)
        w.write(PatchFormat.minorVersion)
        w.write(bytes: try content.withUnsafeBytes { try Zstd.compress($0, level: level) })
        return w.bytes
    }

    /// Parses and fully checks .wpatch bytes: magic, version, frame checksum, canonical manifest, id,
    /// section sizes, residues and the per-tensor hash chain. Never traps on malformed input.
    public static func decode(_ bytes: [UInt8], maxContentBytes: Int = PatchFormat.defaultMaxContentBytes) throws -> Patch {
        try bytes.withUnsafeBytes { try decode($0, maxContentBytes: maxContentBytes) }
    }

    public static func decode(_ bytes: UnsafeRawBufferPointer, maxContentBytes: Int = PatchFormat.defaultMaxContentBytes) throws -> Patch {
        guard bytes.count >= PatchFormat.magic.count, bytes.prefix(PatchFormat.magic.count).elementsEqual(PatchFormat.magic) else {
            throw PatchError.notAPatch
        }
        guard bytes.count >= PatchFormat.preambleSize else { throw PatchError.truncated(what: "version") }
        var r = ByteReader(bytes, offset: PatchFormat.magic.count)
        let major = try r.read(UInt16.self), minor = try r.read(UInt16.self)
        guard major == PatchFormat.majorVersion else { throw PatchError.unsupportedVersion(major: major, minor: minor) }
        guard r.remaining > 0 else { throw PatchError.truncated(what: "compressed content") }
        let content = try Zstd.decompress(UnsafeRawBufferPointer(rebasing: bytes[PatchFormat.preambleSize...]), maxSize: maxContentBytes)
        return try content.withUnsafeBytes { try decode(content: $0) }
    }

    /// Parses decompressed content (§1 item 4: manifest length, manifest, binary area). With
    /// `verifyingID: false` the stored id is only checked for its form, so a fuzzer can reach the
    /// manifest checks without forging SHA-256s; everything else is checked as in `decode`.
    public static func decode(content: UnsafeRawBufferPointer, verifyingID: Bool = true) throws -> Patch {
        guard content.count >= 8 else { throw PatchError.truncated(what: "manifest length") }
        var r = ByteReader(content)
        let m = try r.read(UInt64.self)
        guard m <= UInt64(r.remaining) else { throw PatchError.truncated(what: "manifest") }
        let json = try r.readBytes(Int(m))
        let binary = UnsafeRawBufferPointer(rebasing: content[r.offset...])
        let root = try JSONValue.parse(json)
        guard root.canonicalBytes().elementsEqual(json) else { throw PatchError.nonCanonicalManifest }
        guard case var .object(members) = root else { throw PatchError.invalidManifest("manifest is not an object") }
        guard case let .string(stored)? = members.removeValue(forKey: "id"), Hash.isSHA256Hex(stored) else {
            throw PatchError.invalidManifest("manifest has no id of 64 lowercase hex digits")
        }
        let computed = verifyingID ? contentID(manifest: members, binary: Array(binary)) : stored
        guard computed == stored || !verifyingID else { throw PatchError.idMismatch(stored: stored, computed: computed) }
        return try Patch.from(manifest: .object(members), binary: binary)
    }
}
