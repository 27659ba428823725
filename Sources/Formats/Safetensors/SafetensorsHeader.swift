/// Reading and validating a safetensors header: FORMATS.md §1.4 rules 1–10, in the order of
/// `SafeTensors::read_metadata` and `Metadata::validate` (huggingface/safetensors `tensor.rs`), plus our
/// own rejection of duplicate names (§1.6). Only the header bytes are touched, never tensor data, so
/// opening a file of any size costs the same.
enum SafetensorsHeader {
    /// `MAX_HEADER_SIZE` in `tensor.rs`.
    static let maxHeaderLength = 100_000_000

    /// One header entry as written in the JSON. Numbers stay u64 until validated, so that a value
    /// that does not fit `Int` fails with the same rule the Rust reader would apply.
    struct RawEntry {
        var name: String
        var dtype: DType
        var shape: [UInt64]
        var begin: UInt64
        var end: UInt64
    }

    struct Layout {
        var headerLength: Int
        var metadata: [String: String]
        /// Validated tensors in data-offset order.
        var tensors: [SafetensorsTensor]
    }

    /// Validates a whole safetensors file held in `file` and returns its layout.
    static func read(_ file: UnsafeRawBufferPointer) throws -> Layout {
        // Rule 1
        guard file.count >= 8 else { throw FormatError.headerTooSmall(length: file.count) }
        // Rule 2
        var reader = ByteReader(file)
        let n = try reader.read(UInt64.self)
        guard n <= UInt64(maxHeaderLength) else { throw FormatError.headerTooLarge(length: n) }
        let headerLength = Int(n)
        // Rule 3 (n <= 1e8, so 8 + n cannot overflow)
        guard 8 + headerLength <= file.count else {
            throw FormatError.invalidHeaderLength(length: n, fileLength: file.count)
        }
        let json = UnsafeRawBufferPointer(rebasing: file[8..<(8 + headerLength)])
        // Rule 4
        guard String(validating: json, as: UTF8.self) != nil else { throw FormatError.invalidHeaderUTF8 }
        // Rule 5 (+ duplicate names)
        let (metadata, entries) = try parse(json)
        // Rules 6–10
        let tensors = try validate(entries, dataStart: 8 + headerLength, fileLength: file.count)
        return Layout(headerLength: headerLength, metadata: metadata, tensors: tensors)
    }

    /// Rule 5: the JSON object `{"__metadata__": {str: str} | null, NAME: {dtype, shape, data_offsets}}`.
    /// Leading and trailing JSON whitespace is accepted; anything else after the object (NUL padding,
    /// garbage) is not. Extra fields inside a tensor entry are ignored, as the Rust reader does.
    static func parse(_ json: UnsafeRawBufferPointer) throws -> (metadata: [String: String], entries: [RawEntry]) {
        var scanner = JSONScanner(json)
        var metadata: [String: String] = [:]
        var sawMetadata = false
        var entries: [RawEntry] = []
        var names: Set<String> = []
        do {
            try scanner.object { s, key in
                if key == "__metadata__" {
                    guard !sawMetadata else { throw s.failure("duplicate field `__metadata__`") }
                    sawMetadata = true
                    metadata = try parseMetadata(&s)
                    return
                }
                guard names.insert(key).inserted else { throw FormatError.duplicateTensor(key) }
                entries.append(try parseEntry(&s, name: key))
            }
            try scanner.expectEnd()
        } catch let f as JSONScanner.Failure {
            throw FormatError.invalidHeaderJSON(f.message)
        }
        return (metadata, entries)
    }

    private static func parseMetadata(_ s: inout JSONScanner) throws -> [String: String] {
        var metadata: [String: String] = [:]
        if s.consumeNull() { return metadata }  // Option<HashMap> accepts null
        try s.object { s, key in
            s.skipWhitespace()
            guard s.peek == UInt8(ascii: "\"") else { throw s.failure("metadata value of '\(key)' is not a string") }
            let value = try s.string()
            guard metadata.updateValue(value, forKey: key) == nil else {
                throw s.failure("duplicate metadata key '\(key)'")
            }
        }
        return metadata
    }

    private static func parseEntry(_ s: inout JSONScanner, name: String) throws -> RawEntry {
        var dtype: DType?
        var shape: [UInt64]?
        var offsets: (UInt64, UInt64)?
        try s.object { s, field in
            switch field {
            case "dtype":
                guard dtype == nil else { throw s.failure("duplicate field `dtype` in tensor '\(name)'") }
                let text = try s.string()
                guard let t = DType(safetensorsName: text) else { throw FormatError.unknownDType(text) }
                dtype = t
            case "shape":
                guard shape == nil else { throw s.failure("duplicate field `shape` in tensor '\(name)'") }
                var dims: [UInt64] = []
                try s.array { s in dims.append(try s.unsignedInteger()) }
                shape = dims
            case "data_offsets":
                guard offsets == nil else { throw s.failure("duplicate field `data_offsets` in tensor '\(name)'") }
                var values: [UInt64] = []
                try s.array { s in
                    guard values.count < 2 else { throw s.failure("data_offsets of '\(name)' has more than 2 values") }
                    values.append(try s.unsignedInteger())
                }
                guard values.count == 2 else { throw s.failure("data_offsets of '\(name)' needs 2 values") }
                offsets = (values[0], values[1])
            default:
                try s.skipValue(depth: 2)
            }
        }
        guard let dtype else { throw s.failure("missing field `dtype` in tensor '\(name)'") }
        guard let shape else { throw s.failure("missing field `shape` in tensor '\(name)'") }
        guard let offsets else { throw s.failure("missing field `data_offsets` in tensor '\(name)'") }
        return RawEntry(name: name, dtype: dtype, shape: shape, begin: offsets.0, end: offsets.1)
    }

    /// Rules 6–10. Entries are visited in (begin, end) order; each must start where the previous one
    /// ended (the first at 0), which forbids holes and overlaps in one check. All size arithmetic is
    /// checked u64, like Rust's `checked_mul` on a 64-bit `usize`.
    static func validate(_ entries: [RawEntry], dataStart: Int, fileLength: Int) throws -> [SafetensorsTensor] {
        // A stable sort keeps header order among equal ranges (several empty tensors at one offset).
        let sorted = entries.enumerated().sorted { a, b in
            (a.element.begin, a.element.end, a.offset) < (b.element.begin, b.element.end, b.offset)
        }.map(\.element)
        var tensors: [SafetensorsTensor] = []
        tensors.reserveCapacity(sorted.count)
        var end: UInt64 = 0
        for e in sorted {
            // Rule 6
            guard e.begin == end, e.end >= e.begin else { throw FormatError.invalidOffset(tensor: e.name) }
            end = e.end
            // Rule 7
            var elements: UInt64 = 1
            for d in e.shape {
                let (m, o) = elements.multipliedReportingOverflow(by: d)
                guard !o else { throw FormatError.validationOverflow(tensor: e.name) }
                elements = m
            }
            let (nbits, o) = elements.multipliedReportingOverflow(by: UInt64(e.dtype.bits!))
            guard !o else { throw FormatError.validationOverflow(tensor: e.name) }
            // Rule 8
            guard nbits % 8 == 0 else { throw FormatError.misalignedSlice(tensor: e.name) }
            // Rule 9
            let size = nbits / 8
            guard e.end - e.begin == size else {
                throw FormatError.tensorInvalidInfo(tensor: e.name, expectedBytes: clampToInt(size),
                                                    foundBytes: clampToInt(e.end - e.begin))
            }
            // Past rule 9 with rule 10 still to come, the offsets may still exceed the file; check
            // that first so the conversions to Int below cannot trap.
            guard e.end <= UInt64(fileLength - dataStart) else { continue }
            // A dimension above Int.max can only pass rules 7–9 next to a zero dimension; such a
            // shape is not representable as [Int], so it counts as an overflow.
            guard e.shape.allSatisfy({ $0 <= UInt64(Int.max) }) else {
                throw FormatError.validationOverflow(tensor: e.name)
            }
            let begin = Int(e.begin), stop = Int(e.end)
            tensors.append(SafetensorsTensor(name: e.name, dtype: e.dtype, shape: e.shape.map { Int($0) },
                                             dataOffsets: begin..<stop,
                                             fileRange: (dataStart + begin)..<(dataStart + stop)))
        }
        // Rule 10
        let bufferLength = fileLength - dataStart
        guard end == UInt64(bufferLength) else {
            throw FormatError.metadataIncompleteBuffer(expected: clampToInt(end), found: bufferLength)
        }
        return tensors
    }

    private static func clampToInt(_ v: UInt64) -> Int { v > UInt64(Int.max) ? Int.max : Int(v) }
}
