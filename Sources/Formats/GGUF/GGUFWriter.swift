/// Writes a GGUF file deterministically: metadata in the given order, tensor infos in insertion order,
/// data in the same order with each tensor zero-padded to the alignment (ggml's strict layout, which
/// gguf-py and ggml's own writer produce). Reading a conformant file and writing all of its metadata and
/// tensors back reproduces it byte for byte.
///
/// Everything is validated before the first byte is written, with the reader's rules, so the writer
/// never produces a file that `GGUFFile` (or ggml) would refuse — except nested arrays, which the GGUF
/// spec allows and ggml does not.
public struct GGUFWriter {
    /// Where a tensor's bytes come from when the file is written.
    public enum Source {
        /// Exactly the tensor's bytes (e.g. a view into another file's mapping); must outlive `write`.
        case bytes(UnsafeRawBufferPointer)
        /// Called once during `write` with a zeroed buffer of exactly the tensor's byte count to fill.
        case fill((UnsafeMutableRawBufferPointer) throws -> Void)
    }

    public struct Tensor {
        public var name: String
        /// ggml order (`ne[0]` contiguous), at most 4 dimensions.
        public var ne: [Int]
        public var dtype: DType
        public var source: Source
    }

    public var version: UInt32
    public var metadata: [(key: String, value: GGUFValue)]
    /// nil: taken from `general.alignment` in `metadata`, else 32.
    public var alignment: Int?
    public private(set) var tensors: [Tensor] = []

    public init(version: UInt32 = 3, metadata: [(key: String, value: GGUFValue)], alignment: Int? = nil) {
        self.version = version
        self.metadata = metadata
        self.alignment = alignment
    }

    /// A writer that reproduces `file`: same version, metadata and tensors (sources are views into its
    /// mapping, so `file` must stay alive until `write` returns). Change metadata or sources, then write.
    public init(copying file: GGUFFile) {
        self.init(version: file.version, metadata: file.metadata, alignment: nil)
        for t in file.tensors { addTensor(name: t.name, ne: t.ne, dtype: t.dtype, source: .bytes(file.data(t))) }
    }

    /// Appends a tensor; it is validated when the header is built.
    public mutating func addTensor(name: String, ne: [Int], dtype: DType, source: Source) {
        tensors.append(Tensor(name: name, ne: ne, dtype: dtype, source: source))
    }

    /// Replaces the data source of the tensor called `name`; false if there is none.
    @discardableResult
    public mutating func replaceSource(ofTensor name: String, with source: Source) -> Bool {
        guard let i = tensors.firstIndex(where: { $0.name == name }) else { return false }
        tensors[i].source = source
        return true
    }

    /// The effective alignment: checks `general.alignment` (u32 power of two) and that an explicit
    /// `alignment` agrees with it, because a reader only knows the metadata value.
    public func resolvedAlignment() throws -> Int {
        let fromMetadata = try ggufAlignment(metadata.first { $0.key == "general.alignment" }?.value)
        if let alignment, alignment != fromMetadata {
            throw FormatError.badAlignment("writer alignment \(alignment) differs from general.alignment (\(fromMetadata))")
        }
        return fromMetadata
    }

    /// Byte size of each tensor (in order), after validating names, dimensions and types.
    public func tensorByteCounts() throws -> [Int] {
        var seen = Set<String>()
        return try tensors.map { t in
            guard t.name.utf8.count < 64 else { throw FormatError.tensorNameTooLong(t.name) }
            guard seen.insert(t.name).inserted else { throw FormatError.duplicateTensor(t.name) }
            guard t.ne.count <= 4 else { throw FormatError.tooManyDimensions(tensor: t.name, count: UInt32(t.ne.count)) }
            guard t.ne.allSatisfy({ $0 >= 0 }) else { throw FormatError.negativeDimension(tensor: t.name) }
            guard t.dtype.ggmlType != nil else { throw FormatError.unsupportedDType(t.dtype.name, operation: "GGUF") }
            let ne0 = t.ne.first ?? 1
            guard ne0 % t.dtype.blockSize == 0 else {
                throw FormatError.rowNotBlockAligned(tensor: t.name, ne0: ne0, blockSize: t.dtype.blockSize)
            }
            var elements = 1
            for d in t.ne {
                let (p, o) = elements.multipliedReportingOverflow(by: d)
                guard !o else { throw FormatError.elementCountOverflow(tensor: t.name) }
                elements = p
            }
            guard let n = t.dtype.byteCount(elements: elements) else { throw FormatError.elementCountOverflow(tensor: t.name) }
            if case let .bytes(raw) = t.source, raw.count != n {
                throw FormatError.tensorInvalidInfo(tensor: t.name, expectedBytes: n, foundBytes: raw.count)
            }
            return n
        }
    }

    /// Everything before the data section: header, metadata, tensor infos and the padding after them.
    public func headerBytes() throws -> [UInt8] {
        precondition(version == 2 || version == 3, "GGUFWriter writes versions 2 and 3 only")
        let alignment = try resolvedAlignment()
        let sizes = try tensorByteCounts()

        var w = ByteWriter(capacity: 4096)
        w.write(bytes: Array("GGUF".utf8))
        w.write(version)
        w.write(UInt64(tensors.count))
        w.write(UInt64(metadata.count))
        var keys = Set<String>()
        for (i, kv) in metadata.enumerated() {
            guard !kv.key.isEmpty else { throw FormatError.emptyKey(index: i) }
            guard keys.insert(kv.key).inserted else { throw FormatError.duplicateKey(kv.key) }
            w.writeGGUFString(Array(kv.key.utf8))
            w.write(kv.value.type.rawValue)
            try w.writeGGUFValue(kv.value, key: kv.key)
        }
        var offset = 0
        for (t, size) in zip(tensors, sizes) {
            w.writeGGUFString(Array(t.name.utf8))
            w.write(UInt32(t.ne.count))
            for d in t.ne { w.write(UInt64(d)) }
            w.write(t.dtype.ggmlType!)
            w.write(UInt64(offset))
            offset += alignUp(size, alignment)
        }
        w.pad(toMultipleOf: alignment)
        return w.bytes
    }

    /// The whole file in memory (small files and tests).
    public func serialized() throws -> [UInt8] {
        var out = try headerBytes()
        try emitData { chunk in out.append(contentsOf: chunk) }
        return out
    }

    /// Writes the file atomically (temp file + fsync + rename). Refuses an existing `path` unless
    /// `overwrite`.
    public func write(to path: String, overwrite: Bool) throws {
        let header = try headerBytes()  // validates everything before any output exists
        let out = try OutputFile(path: path, overwrite: overwrite)
        do {
            try out.write(header)
            try emitData { chunk in try out.write(chunk) }
            try out.commit()
        } catch {
            out.discard()
            throw error
        }
    }

    /// Passes each tensor's bytes and then its padding to `sink`, in order.
    private func emitData(_ sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        let alignment = try resolvedAlignment()
        let sizes = try tensorByteCounts()
        let zeros = [UInt8](repeating: 0, count: alignment)
        for (t, size) in zip(tensors, sizes) {
            switch t.source {
            case let .bytes(raw):
                try sink(raw)  // size checked by tensorByteCounts
            case let .fill(fill):
                let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 64)
                defer { buffer.deallocate() }
                buffer.initializeMemory(as: UInt8.self, repeating: 0)
                try fill(buffer)
                try sink(UnsafeRawBufferPointer(buffer))
            }
            let pad = alignUp(size, alignment) - size
            if pad > 0 { try zeros.withUnsafeBytes { try sink(UnsafeRawBufferPointer(rebasing: $0[0..<pad])) } }
        }
    }
}
