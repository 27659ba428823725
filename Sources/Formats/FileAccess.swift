import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Opening input files without trusting what the path names. A plain `open(O_RDONLY)` of a FIFO blocks
/// until some writer appears (forever, usually), and reading a character device never ends; so every
/// input is opened with `O_NONBLOCK`, checked with `fstat` on the descriptor (not the path, which could
/// be swapped in between), and refused unless it is a regular file.
public enum FileAccess {
    /// An open descriptor of a regular file and its status. The caller closes `fd`.
    public struct Opened {
        public let fd: Int32
        public let status: stat
    }

    /// Opens `path` read-only; throws `.notAFile` naming what it is (directory, FIFO, socket, device).
    public static func openRegular(_ path: String) throws -> Opened {
        // O_NONBLOCK makes a FIFO open return at once; it has no effect on regular files' reads but is
        // cleared anyway so the descriptor behaves normally afterwards.
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else {
            let e = errno
            // A UNIX socket cannot be opened at all (ENXIO); say what it is rather than "no such device".
            if e == ENXIO, let kind = kind(ofPath: path) { throw FormatError.notAFile(path: path, kind: kind) }
            throw FormatError.io(path: path, operation: "open", errno: e)
        }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let e = errno
            close(fd)
            throw FormatError.io(path: path, operation: "fstat", errno: e)
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            throw FormatError.notAFile(path: path, kind: kind(ofMode: st.st_mode))
        }
        let flags = fcntl(fd, F_GETFL)
        if flags >= 0 { _ = fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) }
        return Opened(fd: fd, status: st)
    }

    /// The whole content of a small regular file (config.json, tokenizer.json, a requests file).
    public static func read(_ path: String) throws -> Data {
        let f = try openRegular(path)
        defer { close(f.fd) }
        var data = Data(capacity: max(0, Int(f.status.st_size)))
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(f.fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw FormatError.io(path: path, operation: "read", errno: errno)
            }
            if n == 0 { return data }
            data.append(contentsOf: chunk[0..<n])
        }
    }

    /// Whether `path` names a directory (following symlinks), without opening it.
    public static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// "a directory", "a FIFO", … for a file that is not regular; nil if `path` cannot be stat'ed.
    static func kind(ofPath path: String) -> String? {
        var st = stat()
        return stat(path, &st) == 0 ? kind(ofMode: st.st_mode) : nil
    }

    static func kind(ofMode mode: mode_t) -> String {
        switch mode & S_IFMT {
        case S_IFDIR: return "a directory"
        case S_IFIFO: return "a FIFO"
        case S_IFSOCK: return "a socket"
        case S_IFCHR: return "a character device"
        case S_IFBLK: return "a block device"
        case S_IFLNK: return "a symbolic link"
        default: return "a regular file"
        }
    }
}
