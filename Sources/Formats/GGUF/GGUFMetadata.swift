/// One metadata key-value of a `GGUFFile`, validated but not decoded: where its value lies and, for an
/// array, its element type and count (so that a 49k-entry vocabulary costs nothing until it is read).
/// Decode it with `GGUFFile.value(of:)` or `GGUFFile[key]`.
public struct GGUFMetadataEntry: Sendable, Equatable {
    public let key: String
    public let type: GGUFValueType
    /// Absolute file offsets of the encoded value, after its type id (for an array: from its element
    /// type id to the end of its last element).
    public let range: Range<Int>
    /// Element type of an array value (the outer array's, for nested arrays); nil for other types.
    public let arrayElementType: GGUFValueType?
    /// Element count of an array value; nil for other types.
    public let arrayCount: Int?

    public init(key: String, type: GGUFValueType, range: Range<Int>, arrayElementType: GGUFValueType?, arrayCount: Int?) {
        self.key = key
        self.type = type
        self.range = range
        self.arrayElementType = arrayElementType
        self.arrayCount = arrayCount
    }
}

extension ByteReader {
    /// Validates the value of `key` (of type `type`) that starts at the cursor, moves past it and
    /// returns where it lies. The reader must cover the whole file, so that `range` is absolute.
    mutating func skipGGUFEntry(key: String, type: GGUFValueType) throws -> GGUFMetadataEntry {
        let start = offset
        var elementType: GGUFValueType?
        var count: Int?
        if type == .array {
            // Peek at the array header; skipGGUFValue reads (and checks) it again from `start`.
            let t = try readGGUFType(key: key)
            let n = try read(UInt64.self)
            elementType = t
            count = n <= ggufMaxArrayCount ? Int(n) : nil
            try seek(to: start)
        }
        try skipGGUFValue(type, key: key)
        return GGUFMetadataEntry(key: key, type: type, range: start..<offset, arrayElementType: elementType,
                                 arrayCount: count)
    }

    /// Moves past one value of type `type`, applying exactly the checks of `readGGUFValue` (same errors,
    /// same order) without building anything: fixed-size arrays are bounds-checked in one step (bool
    /// arrays also have their bytes checked), strings only have their lengths read.
    mutating func skipGGUFValue(_ type: GGUFValueType, key: String, depth: Int = 0) throws {
        switch type {
        case .bool:
            let b = try read(UInt8.self)
            guard b <= 1 else { throw FormatError.invalidBool(key: key, value: b) }
        case .string:
            _ = try readGGUFBytes()
        case .array:
            let (elementType, count) = try readGGUFArrayHeader(key: key, depth: depth)
            switch elementType {
            case .bool:
                // The header checked the bytes are there; the first one above 1 is the error.
                let bytes = try readBytes(count)
                if let bad = bytes.first(where: { $0 > 1 }) { throw FormatError.invalidBool(key: key, value: bad) }
            case .string, .array:
                for _ in 0..<count { try skipGGUFValue(elementType, key: key, depth: depth + 1) }
            default:
                try skip(count * elementType.minimumSize)  // fixed size: minimumSize is the size
            }
        default:
            try skip(type.fixedSize!)
        }
    }
}
