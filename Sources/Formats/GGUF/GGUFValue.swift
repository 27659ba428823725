/// GGUF metadata value types (FORMATS.md §2.2). The raw value is the on-disk u32 id.
public enum GGUFValueType: UInt32, Sendable, CaseIterable {
    case uint8 = 0, int8, uint16, int16, uint32, int32, float32, bool, string, array, uint64, int64, float64

    /// Bytes of one value of a fixed-size type; nil for string and array.
    public var fixedSize: Int? {
        switch self {
        case .uint8, .int8, .bool: return 1
        case .uint16, .int16: return 2
        case .uint32, .int32, .float32: return 4
        case .uint64, .int64, .float64: return 8
        case .string, .array: return nil
        }
    }

    /// The fewest bytes one value of this type can take in a file (string: its u64 length; array: its
    /// u32 element type + u64 count). Used to reject counts the remaining bytes cannot hold before
    /// allocating anything for them.
    var minimumSize: Int { fixedSize ?? (self == .string ? 8 : 12) }
}

/// A GGUF string: the exact bytes from the file (no NUL terminator, normally UTF-8). Bytes are kept,
/// not a `String`, so that a file with non-UTF-8 values is rewritten unchanged.
public struct GGUFString: Equatable, Hashable, Sendable, ExpressibleByStringLiteral, CustomStringConvertible {
    public var bytes: [UInt8]

    public init(bytes: [UInt8]) { self.bytes = bytes }
    public init(_ string: String) { bytes = Array(string.utf8) }
    public init(stringLiteral value: String) { self.init(value) }

    /// The text; lossless when `bytes` are valid UTF-8 (invalid sequences become U+FFFD).
    public var string: String { String(decoding: bytes, as: UTF8.self) }
    public var isValidUTF8: Bool { String(validating: bytes, as: UTF8.self) != nil }
    public var description: String { string }
}

/// One metadata value. Arrays carry their element type explicitly so that an empty array keeps it and
/// a rewrite reproduces the file; every element must have that type. Arrays may nest (the GGUF spec
/// allows it; ggml does not) up to `GGUFValue.maxArrayDepth` levels.
public indirect enum GGUFValue: Equatable, Sendable {
    case uint8(UInt8), int8(Int8), uint16(UInt16), int16(Int16), uint32(UInt32), int32(Int32), float32(Float)
    case bool(Bool), string(GGUFString), array(GGUFValueType, [GGUFValue])
    case uint64(UInt64), int64(Int64), float64(Double)

    /// Deepest array nesting accepted by the reader and the writer (1 = a plain array).
    public static let maxArrayDepth = 8

    public var type: GGUFValueType {
        switch self {
        case .uint8: return .uint8
        case .int8: return .int8
        case .uint16: return .uint16
        case .int16: return .int16
        case .uint32: return .uint32
        case .int32: return .int32
        case .float32: return .float32
        case .bool: return .bool
        case .string: return .string
        case .array: return .array
        case .uint64: return .uint64
        case .int64: return .int64
        case .float64: return .float64
        }
    }

    /// A string value from Swift text.
    public static func text(_ s: String) -> GGUFValue { .string(GGUFString(s)) }
    /// An array of strings.
    public static func strings(_ values: [String]) -> GGUFValue { .array(.string, values.map(text)) }

    // MARK: Convenience accessors (nil when the value has another type)

    public var string: String? { if case let .string(s) = self { return s.string }; return nil }

    /// Any integer type, if it fits in `Int`.
    public var int: Int? {
        switch self {
        case let .uint8(v): return Int(v)
        case let .int8(v): return Int(v)
        case let .uint16(v): return Int(v)
        case let .int16(v): return Int(v)
        case let .uint32(v): return Int(v)
        case let .int32(v): return Int(v)
        case let .uint64(v): return Int(exactly: v)
        case let .int64(v): return Int(v)
        default: return nil
        }
    }

    /// A float type, widened to `Double`; integers are converted too (hyper-parameters such as
    /// `rope.freq_base` are sometimes written as integers).
    public var float: Double? {
        switch self {
        case let .float32(v): return Double(v)
        case let .float64(v): return v
        default: return int.map(Double.init)
        }
    }

    public var bool: Bool? { if case let .bool(b) = self { return b }; return nil }

    /// The elements of an array value.
    public var array: [GGUFValue]? { if case let .array(_, items) = self { return items }; return nil }

    /// The element type of an array value.
    public var elementType: GGUFValueType? { if case let .array(t, _) = self { return t }; return nil }

    public var stringArray: [String]? {
        guard case let .array(.string, items) = self else { return nil }
        return items.compactMap(\.string)
    }

    public var intArray: [Int]? {
        guard case let .array(_, items) = self else { return nil }
        let ints = items.compactMap(\.int)
        return ints.count == items.count ? ints : nil
    }

    public var floatArray: [Double]? {
        guard case let .array(_, items) = self else { return nil }
        let floats = items.compactMap(\.float)
        return floats.count == items.count ? floats : nil
    }
}

// MARK: - Encoding (shared by the reader and the writer)

/// ggml's GGUF_MAX_STRING_LENGTH (1 GiB) and its array element limit (1 Gi).
let ggufMaxStringLength: UInt64 = 1 << 30
let ggufMaxArrayCount: UInt64 = 1 << 30

extension ByteReader {
    /// An array's element type and count, refused before anything is reserved or walked: too deep,
    /// too many elements, or fewer bytes left than `count` elements of the type's minimum size need.
    mutating func readGGUFArrayHeader(key: String, depth: Int) throws -> (GGUFValueType, Int) {
        guard depth < GGUFValue.maxArrayDepth else { throw FormatError.nestedArray(key: key) }
        let elementType = try readGGUFType(key: key)
        let count = try read(UInt64.self)
        guard count <= ggufMaxArrayCount else { throw FormatError.tooManyItems(what: "array element", count: count) }
        let needed = Int(count) * elementType.minimumSize
        guard needed <= remaining else {
            throw FormatError.truncated(offset: offset, needed: needed, available: remaining)
        }
        return (elementType, Int(count))
    }

    /// A `gguf_string`: u64 length + bytes, at most 1 GiB and no more than what is left.
    mutating func readGGUFBytes() throws -> UnsafeRawBufferPointer {
        let start = offset
        let n = try read(UInt64.self)
        guard n <= ggufMaxStringLength else { try seek(to: start); throw FormatError.stringTooLong(length: n) }
        guard n <= UInt64(remaining) else {
            try seek(to: start)
            throw FormatError.truncated(offset: start + 8, needed: Int(n), available: remaining - 8)
        }
        return try readBytes(Int(n))
    }

    /// A value type id, checked to be one of the 13 types.
    mutating func readGGUFType(key: String) throws -> GGUFValueType {
        let raw = try read(UInt32.self)
        guard let t = GGUFValueType(rawValue: raw) else { throw FormatError.invalidValueType(key: key, type: raw) }
        return t
    }

    /// One value of type `type`; `depth` is the number of enclosing arrays.
    mutating func readGGUFValue(_ type: GGUFValueType, key: String, depth: Int = 0) throws -> GGUFValue {
        switch type {
        case .uint8: return .uint8(try read(UInt8.self))
        case .int8: return .int8(try read(Int8.self))
        case .uint16: return .uint16(try read(UInt16.self))
        case .int16: return .int16(try read(Int16.self))
        case .uint32: return .uint32(try read(UInt32.self))
        case .int32: return .int32(try read(Int32.self))
        case .float32: return .float32(try readFloat())
        case .uint64: return .uint64(try read(UInt64.self))
        case .int64: return .int64(try read(Int64.self))
        case .float64: return .float64(try readDouble())
        case .bool:
            let b = try read(UInt8.self)
            guard b <= 1 else { throw FormatError.invalidBool(key: key, value: b) }
            return .bool(b == 1)
        case .string:
            return .string(GGUFString(bytes: Array(try readGGUFBytes())))
        case .array:
            let (elementType, count) = try readGGUFArrayHeader(key: key, depth: depth)
            var items: [GGUFValue] = []
            items.reserveCapacity(count)
            for _ in 0..<count {
                items.append(try readGGUFValue(elementType, key: key, depth: depth + 1))
            }
            return .array(elementType, items)
        }
    }
}

extension ByteWriter {
    mutating func writeGGUFString(_ bytes: [UInt8]) {
        write(UInt64(bytes.count))
        write(bytes: bytes)
    }

    /// Writes the value without its type id (the caller writes that). Throws when an array element
    /// does not have the array's declared type, or arrays nest too deeply.
    mutating func writeGGUFValue(_ value: GGUFValue, key: String, depth: Int = 0) throws {
        switch value {
        case let .uint8(v): write(v)
        case let .int8(v): write(v)
        case let .uint16(v): write(v)
        case let .int16(v): write(v)
        case let .uint32(v): write(v)
        case let .int32(v): write(v)
        case let .float32(v): write(v)
        case let .uint64(v): write(v)
        case let .int64(v): write(v)
        case let .float64(v): write(v)
        case let .bool(b): write(UInt8(b ? 1 : 0))
        case let .string(s):
            guard UInt64(s.bytes.count) <= ggufMaxStringLength else {
                throw FormatError.stringTooLong(length: UInt64(s.bytes.count))
            }
            writeGGUFString(s.bytes)
        case let .array(elementType, items):
            guard depth < GGUFValue.maxArrayDepth else { throw FormatError.nestedArray(key: key) }
            guard UInt64(items.count) <= ggufMaxArrayCount else {
                throw FormatError.tooManyItems(what: "array element", count: UInt64(items.count))
            }
            write(elementType.rawValue)
            write(UInt64(items.count))
            for item in items {
                guard item.type == elementType else {
                    throw FormatError.invalidValueType(key: key, type: item.type.rawValue)
                }
                try writeGGUFValue(item, key: key, depth: depth + 1)
            }
        }
    }
}
