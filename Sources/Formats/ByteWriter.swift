/// A growable little-endian byte buffer for headers and small files.
public struct ByteWriter {
    public private(set) var bytes: [UInt8] = []

    public init(capacity: Int = 0) { bytes.reserveCapacity(capacity) }

    public var count: Int { bytes.count }

    public mutating func write<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    public mutating func write(_ value: Float) { write(value.bitPattern) }
    public mutating func write(_ value: Double) { write(value.bitPattern) }

    public mutating func write(bytes other: some Sequence<UInt8>) { bytes.append(contentsOf: other) }
    public mutating func write(_ raw: UnsafeRawBufferPointer) { bytes.append(contentsOf: raw) }

    /// Appends `byte` until the length is a multiple of `alignment`.
    public mutating func pad(toMultipleOf alignment: Int, with byte: UInt8 = 0) {
        let extra = (alignment - bytes.count % alignment) % alignment
        bytes.append(contentsOf: repeatElement(byte, count: extra))
    }

    /// Overwrites a previously written placeholder integer at `offset`.
    public mutating func patch<T: FixedWidthInteger>(_ value: T, at offset: Int) {
        withUnsafeBytes(of: value.littleEndian) { raw in
            for (i, b) in raw.enumerated() { bytes[offset + i] = b }
        }
    }
}

/// `o` rounded up to a multiple of `alignment` (ggml's GGML_PAD).
@inline(__always)
public func alignUp(_ o: Int, _ alignment: Int) -> Int { o + (alignment - o % alignment) % alignment }
