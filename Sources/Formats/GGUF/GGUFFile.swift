// GGUF v2 / v3, little-endian (FORMATS.md §2; ggml-org/ggml docs/gguf.md, src/gguf.cpp).
//
// Byte layout, all integers little-endian, no implicit padding between fields:
//
//  1. magic              4 bytes  "GGUF" (0x47 0x47 0x55 0x46)
//  2. version            u32      2 or 3 (1 is obsolete; `version & 0xFFFF == 0` means a big-endian file)
//  3. tensor_count       u64
//  4. metadata_kv_count  u64
//  5. metadata_kv[metadata_kv_count], each:
//       5.1 key          gguf_string = u64 length + bytes (no NUL); non-empty, unique
//       5.2 value_type   u32      0..12 (GGUFValueType)
//       5.3 value        fixed-size LE scalar | gguf_string |
//                        array = u32 element type + u64 element count + elements (each without a type id)
//  6. tensor_info[tensor_count], each:
//       6.1 name         gguf_string, < 64 bytes, unique
//       6.2 n_dims       u32      ≤ 4
//       6.3 ne[n_dims]   u64 each (read as int64, ≥ 0); ne[0] is the contiguous dimension = reversed shape
//       6.4 type         u32      ggml_type; ne[0] must be a multiple of its block size
//       6.5 offset       u64      relative to the start of tensor_data
//  7. padding            zeros up to a multiple of ALIGNMENT (general.alignment, a u32 power of two;
//                        32 when absent)
//  8. tensor_data        each tensor's bytes in info order, each followed by zero padding to ALIGNMENT, so
//                        that offset[i] == Σ_{j<i} alignUp(nbytes[j], ALIGNMENT) (ggml checks this exactly)

/// One tensor's entry in the tensor-info table.
public struct GGUFTensorInfo: Sendable, Equatable {
    public let name: String
    /// Dimensions in ggml order: `ne[0]` is contiguous. 1 to 4 entries (0 for a scalar written that way).
    public let ne: [Int]
    public let dtype: DType
    /// Byte offset relative to the start of the data section (`GGUFFile.dataOffset`).
    public let offset: Int
    /// Bytes of data, without alignment padding.
    public let byteCount: Int

    public init(name: String, ne: [Int], dtype: DType, offset: Int, byteCount: Int) {
        self.name = name
        self.ne = ne
        self.dtype = dtype
        self.offset = offset
        self.byteCount = byteCount
    }

    /// Dimensions in numpy / torch / safetensors order (last contiguous): `ne` reversed.
    public var shape: [Int] { ne.reversed() }
    public var elementCount: Int { ne.reduce(1, *) }
}

/// A GGUF file mapped read-only and fully validated on open (the rules of ggml's reader, FORMATS.md §2.3).
///
/// Metadata is validated on open but decoded lazily: opening walks every value once (types, bool bytes,
/// string lengths, array extents and nesting) without allocating for it, and records where each value
/// lies, so opening costs O(keys + tensors + array elements walked) and no memory per vocabulary entry.
/// A value becomes a `GGUFValue` only when asked for (`self[key]`, `metadata`). Tensor data is handed
/// out as views into the mapping. Like tensor data, decoding relies on the file not changing while it is
/// mapped.
public final class GGUFFile: @unchecked Sendable {
    public let file: MappedFile
    public let version: UInt32
    /// Metadata entries in file order, values not yet decoded.
    public let entries: [GGUFMetadataEntry]
    /// Tensor infos in file order (which is also data order).
    public let tensors: [GGUFTensorInfo]
    public let alignment: Int
    /// Absolute file offset of the data section.
    public let dataOffset: Int
    /// Absolute file offset where the tensor-info table ends (before the padding to `dataOffset`).
    public let headerEnd: Int

    private let keyIndex: [String: Int]
    private let tensorIndex: [String: Int]

    public convenience init(path: String) throws {
        try self.init(file: MappedFile(path: path))
    }

    public init(file: MappedFile) throws {
        self.file = file
        var r = ByteReader(file.bytes)

        // 1–2. magic and version
        let magic = Array(try r.readBytes(4))
        guard magic == Array("GGUF".utf8) else { throw FormatError.badMagic(found: magic) }
        let version = try r.read(UInt32.self)
        guard version != 0 else { throw FormatError.unsupportedVersion(version) }
        guard version & 0xFFFF != 0 else { throw FormatError.bigEndian }
        guard version == 2 || version == 3 else { throw FormatError.unsupportedVersion(version) }
        self.version = version

        // 3–4. counts, bounded by the smallest possible entry so nothing huge is ever reserved:
        // a key-value takes ≥ 8 + 1 + 4 + 1 bytes, a tensor info ≥ 8 + 4 + 4 + 8.
        let tensorCount = try r.read(UInt64.self)
        let kvCount = try r.read(UInt64.self)
        // A count that would fit a file of a plausible size (below 2^24 entries) means the file was cut
        // short, which is the common case and deserves that name; anything larger is garbage.
        guard kvCount <= UInt64(r.remaining / 14) else {
            if kvCount < 1 << 24 { throw FormatError.fileTruncated(what: "metadata key", count: kvCount, available: r.remaining) }
            throw FormatError.tooManyItems(what: "metadata key", count: kvCount)
        }
        guard tensorCount <= UInt64(r.remaining / 24) else {
            if tensorCount < 1 << 24 { throw FormatError.fileTruncated(what: "tensor", count: tensorCount, available: r.remaining) }
            throw FormatError.tooManyItems(what: "tensor", count: tensorCount)
        }

        // 5. metadata: validated in full, decoded later (GGUFMetadataEntry)
        var entries: [GGUFMetadataEntry] = []
        var keyIndex: [String: Int] = [:]
        entries.reserveCapacity(Int(kvCount))
        for i in 0..<Int(kvCount) {
            let keyBytes = try r.readGGUFBytes()
            guard !keyBytes.isEmpty else { throw FormatError.emptyKey(index: i) }
            guard let key = String(validating: keyBytes, as: UTF8.self) else {
                throw FormatError.invalidUTF8(what: "metadata key \(i)")
            }
            guard keyIndex[key] == nil else { throw FormatError.duplicateKey(key) }
            let type = try r.readGGUFType(key: key)
            keyIndex[key] = entries.count
            entries.append(try r.skipGGUFEntry(key: key, type: type))
        }
        self.entries = entries
        self.keyIndex = keyIndex
        let alignmentEntry = keyIndex["general.alignment"].map { entries[$0] }
        alignment = try ggufAlignment(alignmentEntry.map { GGUFFile.decode($0, in: file) })

        // 6. tensor infos
        var tensors: [GGUFTensorInfo] = []
        var tensorIndex: [String: Int] = [:]
        tensors.reserveCapacity(Int(tensorCount))
        var expectedOffset = 0  // running sum of padded sizes (the strict layout rule)
        for _ in 0..<Int(tensorCount) {
            let nameBytes = try r.readGGUFBytes()
            guard let name = String(validating: nameBytes, as: UTF8.self) else {
                throw FormatError.invalidUTF8(what: "tensor name at offset \(r.offset - nameBytes.count)")
            }
            guard nameBytes.count < 64 else { throw FormatError.tensorNameTooLong(name) }
            guard tensorIndex[name] == nil else { throw FormatError.duplicateTensor(name) }
            let nDims = try r.read(UInt32.self)
            guard nDims <= 4 else { throw FormatError.tooManyDimensions(tensor: name, count: nDims) }
            var ne: [Int] = []
            var elements = 1
            var overflow = false
            for _ in 0..<Int(nDims) {
                let d = try r.read(Int64.self)
                guard d >= 0 else { throw FormatError.negativeDimension(tensor: name) }
                ne.append(Int(d))
                if !overflow { (elements, overflow) = elements.multipliedReportingOverflow(by: Int(d)) }
            }
            guard !overflow else { throw FormatError.elementCountOverflow(tensor: name) }
            let rawType = try r.read(UInt32.self)
            guard let dtype = DType(ggmlType: rawType) else { throw FormatError.unknownTensorType(tensor: name, type: rawType) }
            let ne0 = ne.first ?? 1
            guard ne0 % dtype.blockSize == 0 else {
                throw FormatError.rowNotBlockAligned(tensor: name, ne0: ne0, blockSize: dtype.blockSize)
            }
            guard let byteCount = dtype.byteCount(elements: elements) else { throw FormatError.elementCountOverflow(tensor: name) }
            let rawOffset = try r.read(UInt64.self)
            guard rawOffset == UInt64(expectedOffset) else {
                throw FormatError.badTensorOffset(tensor: name, offset: rawOffset, expected: UInt64(expectedOffset))
            }
            // Data that cannot fit in the file even at data offset 0 is refused now, which also keeps the
            // running offset below file size + alignment (no overflow).
            guard byteCount <= file.count - expectedOffset else { throw FormatError.tensorDataOutOfBounds(tensor: name) }
            expectedOffset += alignUp(byteCount, alignment)
            tensorIndex[name] = tensors.count
            tensors.append(GGUFTensorInfo(name: name, ne: ne, dtype: dtype, offset: Int(rawOffset), byteCount: byteCount))
        }
        headerEnd = r.offset

        // 7–8. data section: every tensor's bytes must lie inside the file. The last tensor's trailing
        // padding may be missing (llama.cpp only checks offset + nbytes against the file size).
        dataOffset = alignUp(r.offset, alignment)
        for info in tensors where dataOffset + info.offset + info.byteCount > file.count {
            throw FormatError.tensorDataOutOfBounds(tensor: info.name)
        }
        self.tensors = tensors
        self.tensorIndex = tensorIndex
    }

    /// The entry for `key` (type, array element type and count, byte range) without decoding its value.
    public func entry(_ key: String) -> GGUFMetadataEntry? { keyIndex[key].map { entries[$0] } }

    /// The value of `key`, decoded now (an array of n elements costs O(n) each time it is asked for).
    public subscript(key: String) -> GGUFValue? { entry(key).map { value(of: $0) } }

    /// The value of one of this file's entries, decoded now.
    public func value(of entry: GGUFMetadataEntry) -> GGUFValue { GGUFFile.decode(entry, in: file) }

    /// All metadata decoded, in file order: what the file holds, for rewriting it (`GGUFWriter`).
    /// Costs as much as the values are large (a vocabulary is decoded in full).
    public var metadata: [(key: String, value: GGUFValue)] { entries.map { ($0.key, value(of: $0)) } }

    /// An array of strings decoded straight to `String`s (invalid UTF-8 becomes U+FFFD, as in
    /// `GGUFValue.stringArray`), without a `GGUFValue` per element; nil when `key` is absent or is not an
    /// array of strings.
    public func stringArray(_ key: String) -> [String]? {
        guard let e = entry(key), e.arrayElementType == .string, let count = e.arrayCount else { return nil }
        var r = ByteReader(file.slice(e.range))
        do {
            try r.skip(12)  // element type + count, already known
            var out: [String] = []
            out.reserveCapacity(count)
            for _ in 0..<count { out.append(String(decoding: try r.readGGUFBytes(), as: UTF8.self)) }
            return out
        } catch {
            preconditionFailure("GGUF metadata '\(e.key)' changed after it was validated: \(error)")
        }
    }

    /// Decodes a value that `skipGGUFEntry` validated when the file was opened; only a file modified
    /// while mapped can make this fail.
    static func decode(_ entry: GGUFMetadataEntry, in file: MappedFile) -> GGUFValue {
        var r = ByteReader(file.slice(entry.range))
        do {
            return try r.readGGUFValue(entry.type, key: entry.key)
        } catch {
            preconditionFailure("GGUF metadata '\(entry.key)' changed after it was validated: \(error)")
        }
    }

    public func tensor(named name: String) -> GGUFTensorInfo? { tensorIndex[name].map { tensors[$0] } }

    /// The tensor's bytes: a view into the mapping, valid while this object is alive.
    public func data(_ t: GGUFTensorInfo) -> UnsafeRawBufferPointer {
        file.slice(dataOffset + t.offset ..< dataOffset + t.offset + t.byteCount)
    }

    /// `general.architecture`, e.g. "llama".
    public var architecture: String? { self["general.architecture"]?.string }
}

/// The data alignment given by a `general.alignment` value: it must be a u32 non-zero power of two
/// (ggml's rule; the spec's "multiple of 8" is not enforced by ggml). Absent: 32.
func ggufAlignment(_ value: GGUFValue?) throws -> Int {
    guard let value else { return 32 }
    guard case let .uint32(a) = value else { throw FormatError.badAlignment("type is \(value.type), expected uint32") }
    guard a != 0, a & (a - 1) == 0 else { throw FormatError.badAlignment("\(a) is not a non-zero power of two") }
    return Int(a)
}
