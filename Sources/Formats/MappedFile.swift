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
    /// Device and inode, used to refuse writing an output over one of its own inputs and to notice
    /// that the path was replaced while we read it.
    public let identity: (device: UInt64, inode: UInt64)
    /// The open descriptor of the mapped file, kept so later reads (`copy_file_range`) see the same
    /// inode as the mapping even if the path is renamed over meanwhile.
    public let fd: Int32

    public var count: Int { bytes.count }

    public init(path: String) throws {
        self.path = path
        // Non-blocking open + fstat first: a FIFO or device is refused at once instead of hanging.
        let opened = try FileAccess.openRegular(path)
        let fd = opened.fd, st = opened.status
        guard st.st_size > 0 else { close(fd); throw FormatError.emptyFile(path: path) }
        let size = Int(st.st_size)
        let address = mmap(/* addr: */ nil, /* len: */ size, /* prot: */ PROT_READ, /* flags: */ MAP_PRIVATE,
                           /* fd: */ fd, /* offset: */ 0)
        guard let address, address != MAP_FAILED else {
            let e = errno  // before close() can change it
            close(fd)
            throw FormatError.io(path: path, operation: "mmap", errno: e)
        }
        self.fd = fd
        bytes = UnsafeRawBufferPointer(start: address, count: size)
        identity = (UInt64(st.st_dev), UInt64(st.st_ino))
    }

    /// A private read-only copy of `bytes` standing in for a file named `path`, so the fuzz targets
    /// (Tests/Fuzz) can run the file parsers without touching the disk. There is no descriptor (`fd`
    /// is -1); readers that need one fall back to the mapping.
    @_spi(Fuzzing)
    public init(copying bytes: UnsafeRawBufferPointer, path: String) throws {
        self.path = path
        guard bytes.count > 0 else { throw FormatError.emptyFile(path: path) }
        let address = mmap(/* addr: */ nil, /* len: */ bytes.count, /* prot: */ PROT_READ | PROT_WRITE,
                           /* flags: */ MAP_PRIVATE | MAP_ANONYMOUS, /* fd: */ -1, /* offset: */ 0)
        guard let address, address != MAP_FAILED else { throw FormatError.io(path: path, operation: "mmap", errno: errno) }
        address.copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
        mprotect(address, bytes.count, PROT_READ)
        self.fd = -1
        self.bytes = UnsafeRawBufferPointer(start: address, count: bytes.count)
        identity = (0, 0)
    }

    deinit {
        munmap(UnsafeMutableRawPointer(mutating: bytes.baseAddress), bytes.count)
        if fd >= 0 { close(fd) }
    }

    /// A view of `range` inside the mapping; the range must have been validated by the caller.
    public func slice(_ range: Range<Int>) -> UnsafeRawBufferPointer {
        precondition(range.lowerBound >= 0 && range.upperBound <= bytes.count, "slice out of mapping")
        return UnsafeRawBufferPointer(rebasing: bytes[range])
    }

    /// Drops the whole pages inside `range` from this process's resident set after a one-off read (a
    /// fingerprint hashes every tensor once; without this an 8B file would count in full in the RSS of
    /// an edit that then multiplies by a few layers only). The mapping is read-only and file-backed, so
    /// a later access re-reads the same bytes from the page cache. A no-op for an anonymous copy
    /// (`init(copying:)`), where MADV_DONTNEED would zero the bytes.
    public func releasePages(_ range: Range<Int>) {
        guard fd >= 0 else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = (range.lowerBound + page - 1) / page * page, end = range.upperBound / page * page
        guard start < end, end <= bytes.count else { return }
        madvise(UnsafeMutableRawPointer(mutating: bytes.baseAddress! + start), end - start, MADV_DONTNEED)
    }

    /// Tell the kernel the whole file will be read front to back (convert, hashing).
    public func adviseSequential() {
        madvise(UnsafeMutableRawPointer(mutating: bytes.baseAddress), bytes.count, MADV_SEQUENTIAL)
    }
}
