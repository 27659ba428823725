#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An output written beside its final path and renamed into place only when complete, so a reader
/// never sees a partial file and an interrupted run leaves nothing behind but a hidden temp file that
/// the next run may remove. Usage: create, write, `commit()`; on any error call `discard()` (deinit
/// discards too).
public final class OutputFile {
    public let path: String
    public let tempPath: String
    public let fd: Int32
    private var done = false

    /// - Parameter overwrite: replace an existing file at `path`; otherwise refuse with `.outputExists`.
    public init(path: String, overwrite: Bool = false, mode: mode_t = 0o644) throws {
        self.path = path
        if !overwrite, access(path, F_OK) == 0 { throw FormatError.outputExists(path: path) }
        let (dir, base) = splitPath(path)
        tempPath = (dir.isEmpty ? "" : dir + "/") + "." + base + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        fd = open(tempPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else { throw FormatError.io(path: tempPath, operation: "create", errno: errno) }
    }

    deinit { discard() }

    /// Writes all of `bytes` at the current position (loops over short writes, retries EINTR).
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        var done = 0
        while done < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + done, bytes.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                throw FormatError.io(path: path, operation: "write", errno: errno)
            }
            done += n
        }
    }

    public func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { (raw) throws in try write(raw) }
    }

    /// Writes `count` zero bytes (alignment padding).
    public func writeZeros(_ count: Int) throws {
        if count > 0 { try write([UInt8](repeating: 0, count: count)) }
    }

    /// Current size of the temp file.
    public var position: Int { Int(lseek(fd, 0, SEEK_CUR)) }

    /// fsync, close and rename into place, then fsync the directory so the rename is durable.
    public func commit() throws {
        guard !done else { return }
        guard fsync(fd) == 0 else { let e = errno; discard(); throw FormatError.io(path: path, operation: "fsync", errno: e) }
        close(fd)
        guard rename(tempPath, path) == 0 else {
            let e = errno
            unlink(tempPath)
            done = true
            throw FormatError.io(path: path, operation: "rename", errno: e)
        }
        done = true
        syncDirectory(of: path)
    }

    /// Removes the temp file; the final path is untouched.
    public func discard() {
        guard !done else { return }
        done = true
        close(fd)
        unlink(tempPath)
    }
}

/// ("dir", "name") of a path; dir is "" for a bare file name.
func splitPath(_ path: String) -> (String, String) {
    guard let slash = path.lastIndex(of: "/") else { return ("", path) }
    return (String(path[..<slash]), String(path[path.index(after: slash)...]))
}

func syncDirectory(of path: String) {
    let (dir, _) = splitPath(path)
    let d = open(dir.isEmpty ? "." : dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    if d >= 0 { fsync(d); close(d) }
}
