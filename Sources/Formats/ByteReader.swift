/// A little-endian cursor over a byte buffer with one overflow-safe bounds check. Every read either
/// returns a value or throws `.truncated` and leaves the cursor where it was.
public struct ByteReader {
    public let buffer: UnsafeRawBufferPointer
    public private(set) var offset: Int

    public init(_ buffer: UnsafeRawBufferPointer, offset: Int = 0) {
        self.buffer = buffer
        self.offset = offset
    }

    public var remaining: Int { buffer.count - offset }

    /// The range [offset, offset+count) if it lies inside the buffer. `count` may come from a file, so it
    /// is compared against `remaining` instead of being added to `offset` (which could overflow).
    @inline(__always)
    func checked(_ count: Int) throws -> Int {
        guard count >= 0, count <= remaining else {
            throw FormatError.truncated(offset: offset, needed: count, available: max(0, remaining))
        }
        return offset
    }

    public mutating func read<T: FixedWidthInteger>(_: T.Type) throws -> T {
        let at = try checked(MemoryLayout<T>.size)
        let raw = buffer.loadUnaligned(fromByteOffset: at, as: T.self)
        offset += MemoryLayout<T>.size
        return T(littleEndian: raw)
    }

    public mutating func readFloat() throws -> Float { Float(bitPattern: try read(UInt32.self)) }
    public mutating func readDouble() throws -> Double { Double(bitPattern: try read(UInt64.self)) }

    /// A view of the next `count` bytes (no copy).
    public mutating func readBytes(_ count: Int) throws -> UnsafeRawBufferPointer {
        let at = try checked(count)
        offset += count
        return UnsafeRawBufferPointer(rebasing: buffer[at..<(at + count)])
    }

    /// A byte count read from the file as u64, checked to fit in what is left.
    public mutating func readLength() throws -> Int {
        let start = offset
        let n = try read(UInt64.self)
        guard n <= UInt64(remaining) else {
            offset = start
            throw FormatError.truncated(offset: start + 8, needed: n > UInt64(Int.max) ? Int.max : Int(n), available: remaining)
        }
        return Int(n)
    }

    public mutating func skip(_ count: Int) throws {
        _ = try checked(count)
        offset += count
    }

    public mutating func seek(to position: Int) throws {
        guard position >= 0, position <= buffer.count else {
            throw FormatError.truncated(offset: position, needed: 0, available: buffer.count)
        }
        offset = position
    }
}
