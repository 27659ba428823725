// safetensors file layout (huggingface/safetensors README "Format"; FORMATS.md §1.1):
//
//   offset   size  content
//   0        8     N: u64 little-endian, byte length of the JSON header
//   8        N     UTF-8 JSON: {"__metadata__": {str: str}, NAME: {"dtype": "F16", "shape": [..],
//                  "data_offsets": [BEGIN, END]}, ...}, optionally padded with spaces
//   8 + N    rest  the data buffer; a tensor's bytes are [8 + N + BEGIN, 8 + N + END)
//
// Tensors are little-endian, row-major, without strides. The buffer is covered exactly: no holes,
// no overlaps, no trailing bytes. Nothing guarantees alignment (older writers did not pad the header).

/// One tensor of a safetensors file: where its bytes are, never the bytes themselves.
public struct SafetensorsTensor: Sendable, Equatable {
    public let name: String
    public let dtype: DType
    /// numpy / torch order: the last dimension is contiguous. `[]` is a scalar.
    public let shape: [Int]
    /// Range inside the data buffer, exactly as written in the header.
    public let dataOffsets: Range<Int>
    /// Absolute byte range in the file (`dataOffsets` shifted by `8 + headerLength`).
    public let fileRange: Range<Int>

    public init(name: String, dtype: DType, shape: [Int], dataOffsets: Range<Int>, fileRange: Range<Int>) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.dataOffsets = dataOffsets
        self.fileRange = fileRange
    }

    /// Product of `shape` (1 for a scalar, 0 when any dimension is 0). Validated not to overflow.
    public var elementCount: Int { shape.reduce(1, *) }
    public var byteCount: Int { dataOffsets.count }
}

/// A memory-mapped safetensors file, validated on open (FORMATS.md §1.4 rules 1–10 and no duplicate
/// names). Tensor data is handed out as views into the mapping: keep this object alive while using them.
public final class SafetensorsFile: @unchecked Sendable {
    public let file: MappedFile
    /// N: byte length of the JSON header including its padding.
    public let headerLength: Int
    /// File offset of the data buffer (8 + N).
    public let dataStart: Int
    /// The `__metadata__` map; empty when the header has none.
    public let metadata: [String: String]
    /// All tensors in data-offset order (the order of their bytes in the file).
    public let tensors: [SafetensorsTensor]
    private let indexByName: [String: Int]

    /// Maps and validates the file at `path`.
    public convenience init(path: String) throws {
        try self.init(file: MappedFile(path: path))
    }

    /// Validates the header of an already mapped file. Reads only the header, so it takes the same time
    /// for a 100 KB file as for a 100 GB one.
    public init(file: MappedFile) throws {
        let layout = try SafetensorsHeader.read(file.bytes)
        self.file = file
        headerLength = layout.headerLength
        dataStart = 8 + layout.headerLength
        metadata = layout.metadata
        tensors = layout.tensors
        indexByName = Dictionary(uniqueKeysWithValues: layout.tensors.enumerated().map { ($1.name, $0) })
    }

    public var path: String { file.path }

    /// Tensor names in data-offset order.
    public var names: [String] { tensors.map(\.name) }

    public func tensor(named name: String) -> SafetensorsTensor? {
        indexByName[name].map { tensors[$0] }
    }

    /// The tensor's bytes, a view into the mapping (no copy). It may be unaligned for the tensor's
    /// dtype: read with `loadUnaligned` or copy into an aligned buffer.
    public func data(_ tensor: SafetensorsTensor) -> UnsafeRawBufferPointer {
        file.slice(tensor.fileRange)
    }

    /// The bytes of the tensor called `name`; throws `.tensorNotFound` if there is none.
    public func data(named name: String) throws -> UnsafeRawBufferPointer {
        guard let t = tensor(named: name) else { throw FormatError.tensorNotFound(name) }
        return data(t)
    }
}
