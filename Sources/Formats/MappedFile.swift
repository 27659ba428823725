#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A whole file mapped read-only. Tensor data is handed out as views into the mapping; nothing is copied.
/// The mapping lives as long as this object: keep it alive while any view is in use.
public final class MappedFile: @unchecked Sendable {
    public let path: String
    /// The mapped bytes (count == file size).
    public let bytes: UnsafeRawBufferPointer
    /// Device and inode, used to refuse writing an output over one of its own inputs.
    public let identity: (device: UInt64, inode: UInt64)

    public var count: Int { bytes.count }

    public init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw FormatError.io(path: path, operation: "open", errno: errno) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw FormatError.io(path: path, operation: "fstat", errno: errno) }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw FormatError.notAFile(path: path) }
        guard st.st_size > 0 else { throw FormatError.emptyFile(path: path) }
        let size = Int(st.st_size)
        let address = mmap(/* addr: */ nil, /* len: */ size, /* prot: */ PROT_READ, /* flags: */ MAP_PRIVATE,
                           /* fd: */ fd, /* offset: */ 0)
        guard let address, address != MAP_FAILED else { throw FormatError.io(path: path, operation: "mmap", errno: errno) }
        bytes = UnsafeRawBufferPointer(start: address, count: size)
        identity = (UInt64(st.st_dev), UInt64(st.st_ino))
    }

    deinit {
        munmap(UnsafeMutableRawPointer(mutating: bytes.baseAddress), bytes.count)
    }

    /// A view of `range` inside the mapping; the range must have been validated by the caller.
    public func slice(_ range: Range<Int>) -> UnsafeRawBufferPointer {
        precondition(range.lowerBound >= 0 && range.upperBound <= bytes.count, "slice out of mapping")
        return UnsafeRawBufferPointer(rebasing: bytes[range])
    }

    /// Tell the kernel the whole file will be read front to back (convert, hashing).
    public func adviseSequential() {
        madvise(UnsafeMutableRawPointer(mutating: bytes.baseAddress), bytes.count, MADV_SEQUENTIAL)
    }
}
