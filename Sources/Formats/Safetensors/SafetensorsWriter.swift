/// Writes safetensors files byte-for-byte the way the Rust library does (`tensor.rs` `prepare` and
/// `serialize`; FORMATS.md §1.3), so the same tensors and metadata give the same file as Python's
/// `safetensors.numpy.save_file`:
///
/// - tensors sorted by descending dtype alignment (`DType.safetensorsAlignmentRank`), then by name
///   (byte order), and stored back to back with no padding;
/// - compact JSON: `__metadata__` first (only when non-empty), then each tensor as
///   `{"dtype":..,"shape":[..],"data_offsets":[b,e]}` in storage order;
/// - the JSON padded with spaces to a multiple of 8, so the buffer and (thanks to the sort) every
///   tensor are naturally aligned.
///
/// One difference: Rust writes metadata in `HashMap` order, which changes from run to run; we sort
/// the keys so the output is deterministic. With at most one metadata key the files are identical.
public enum SafetensorsWriter {
    /// Where a tensor's bytes come from.
    public enum Source {
        /// Bytes already in memory (a view into another mapping, an array); must be exactly the
        /// tensor's byte size.
        case bytes(UnsafeRawBufferPointer)
        /// Produces the bytes on demand into a zeroed buffer of exactly the tensor's byte size, so that a
        /// whole checkpoint can be converted holding one tensor at a time.
        case fill((UnsafeMutableRawBufferPointer) throws -> Void)
    }

    public struct Entry {
        public var name: String
        public var dtype: DType
        /// numpy / torch order (last dimension contiguous); `[]` for a scalar.
        public var shape: [Int]
        public var source: Source

        public init(name: String, dtype: DType, shape: [Int], source: Source) {
            self.name = name
            self.dtype = dtype
            self.shape = shape
            self.source = source
        }
    }

    /// The header bytes (8-byte length + padded JSON) and the layout they describe.
    /// - Returns: `bytes` the first `8 + N` bytes of the file; `order` the entry indices in storage
    ///   order; `offsets[i]` the data-buffer range of `entries[i]` (same indexing as `entries`).
    public static func header(for entries: [Entry], metadata: [String: String]) throws
        -> (bytes: [UInt8], order: [Int], offsets: [Range<Int>])
    {
        let sizes = try entries.map(byteSize)
        var seen: Set<String> = []
        for e in entries {
            guard e.name != "__metadata__" else {
                throw FormatError.invalidHeaderJSON("'__metadata__' cannot be used as a tensor name")
            }
            guard seen.insert(e.name).inserted else { throw FormatError.duplicateTensor(e.name) }
        }
        let order = entries.indices.sorted { a, b in
            let ra = entries[a].dtype.safetensorsAlignmentRank, rb = entries[b].dtype.safetensorsAlignmentRank
            if ra != rb { return ra > rb }
            return entries[a].name.utf8.lexicographicallyPrecedes(entries[b].name.utf8)  // Rust `str` order
        }
        var offsets = [Range<Int>](repeating: 0..<0, count: entries.count)
        var end = 0
        for i in order {
            let (next, o) = end.addingReportingOverflow(sizes[i])
            guard !o else { throw FormatError.validationOverflow(tensor: entries[i].name) }
            offsets[i] = end..<next
            end = next
        }

        var json: [UInt8] = [UInt8(ascii: "{")]
        if !metadata.isEmpty {
            appendJSONString("__metadata__", to: &json)
            json += Array(":{".utf8)
            let keys = metadata.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
            for (k, key) in keys.enumerated() {
                if k > 0 { json.append(UInt8(ascii: ",")) }
                appendJSONString(key, to: &json)
                json.append(UInt8(ascii: ":"))
                appendJSONString(metadata[key]!, to: &json)
            }
            json.append(UInt8(ascii: "}"))
        }
        for (k, i) in order.enumerated() {
            if k > 0 || !metadata.isEmpty { json.append(UInt8(ascii: ",")) }
            let e = entries[i]
            appendJSONString(e.name, to: &json)
            json += Array(":{\"dtype\":".utf8)
            appendJSONString(e.dtype.safetensorsName!, to: &json)
            json += Array(",\"shape\":[\(e.shape.map(String.init).joined(separator: ","))]".utf8)
            json += Array(",\"data_offsets\":[\(offsets[i].lowerBound),\(offsets[i].upperBound)]}".utf8)
        }
        json.append(UInt8(ascii: "}"))
        json += repeatElement(UInt8(ascii: " "), count: (8 - json.count % 8) % 8)
        guard json.count <= SafetensorsHeader.maxHeaderLength else {
            throw FormatError.headerTooLarge(length: UInt64(json.count))
        }

        var w = ByteWriter(capacity: 8 + json.count)
        w.write(UInt64(json.count))
        w.write(bytes: json)
        return (w.bytes, order, offsets)
    }

    /// Writes `entries` to `path` atomically (temp file + fsync + rename, via `OutputFile`): on any error,
    /// including one thrown by a `.fill` closure, nothing appears at `path` and an existing file there is
    /// untouched. Memory use beyond the header is one buffer the size of the largest `.fill` tensor.
    /// - Parameter overwrite: replace an existing file; otherwise throws `.outputExists`.
    public static func write(_ entries: [Entry], metadata: [String: String] = [:], to path: String,
                             overwrite: Bool = false) throws
    {
        let (header, order, offsets) = try header(for: entries, metadata: metadata)
        for (i, e) in entries.enumerated() {
            if case let .bytes(raw) = e.source, raw.count != offsets[i].count {
                throw FormatError.tensorInvalidInfo(tensor: e.name, expectedBytes: offsets[i].count, foundBytes: raw.count)
            }
        }
        let out = try OutputFile(path: path, overwrite: overwrite)
        do {
            try out.write(header)
            let fillSize = order.reduce(0) { m, i in
                if case .fill = entries[i].source { return max(m, offsets[i].count) }
                return m
            }
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(fillSize, 1), alignment: 64)
            defer { buffer.deallocate() }
            for i in order {
                switch entries[i].source {
                case let .bytes(raw):
                    try out.write(raw)
                case let .fill(produce):
                    let view = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<offsets[i].count])
                    view.initializeMemory(as: UInt8.self, repeating: 0)
                    try produce(view)
                    try out.write(UnsafeRawBufferPointer(view))
                }
            }
            try out.commit()
        } catch {
            out.discard()
            throw error
        }
    }

    /// Byte size of an entry, with the reader's rules 7 and 8 applied to what we are about to write.
    static func byteSize(_ e: Entry) throws -> Int {
        guard let bits = e.dtype.bits, e.dtype.safetensorsName != nil else {
            throw FormatError.unsupportedDType(e.dtype.name, operation: "safetensors")
        }
        precondition(e.shape.allSatisfy { $0 >= 0 }, "negative dimension in shape of '\(e.name)'")
        var elements = 1
        for d in e.shape {
            let (m, o) = elements.multipliedReportingOverflow(by: d)
            guard !o else { throw FormatError.validationOverflow(tensor: e.name) }
            elements = m
        }
        let (nbits, o) = elements.multipliedReportingOverflow(by: bits)
        guard !o else { throw FormatError.validationOverflow(tensor: e.name) }
        guard nbits % 8 == 0 else { throw FormatError.misalignedSlice(tensor: e.name) }
        return nbits / 8
    }
}
