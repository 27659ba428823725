#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An exclusive advisory lock (`flock`) on a checkpoint, held around a whole read-modify-write (an
/// in-place apply or revert) so two writers cannot both read the old file and each rename its own
/// result over it, losing the other's patch. The lock is released when the object goes away, and by
/// the kernel if the process dies, so a kill -9 never leaves a stale lock.
///
/// A file is locked on its inode (through symlinks). An in-place rewrite renames a new inode over the
/// path, so a writer that waited on the old inode re-checks after getting the lock that the path still
/// names the inode it holds, and starts over on the new one otherwise. A directory checkpoint is locked
/// on the directory itself, whose inode never changes.
///
/// Only cooperating processes (wilke) are held off; other programs writing the file are not.
public final class FileLock {
    public let path: String
    private let fd: Int32

    /// Locks `path` (which must exist), waiting as long as another process holds it; `onWait` is called
    /// once, before the first wait, so the caller can say why nothing happens.
    public init(path: String, onWait: (() -> Void)? = nil) throws {
        self.path = path
        var warned = false
        while true {
            let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
            guard fd >= 0 else { throw FormatError.io(path: path, operation: "open", errno: errno) }
            var st = stat()
            guard fstat(fd, &st) == 0, FileLock.kindIsLockable(st) else {
                close(fd)
                throw FormatError.notAFile(path: path, kind: FileAccess.kind(ofMode: st.st_mode))
            }
            if flock(fd, LOCK_EX | LOCK_NB) != 0 {
                guard errno == EWOULDBLOCK else {
                    let e = errno
                    close(fd)
                    throw FormatError.io(path: path, operation: "lock", errno: e)
                }
                if !warned { onWait?(); warned = true }
                while flock(fd, LOCK_EX) != 0 {
                    guard errno == EINTR else {
                        let e = errno
                        close(fd)
                        throw FormatError.io(path: path, operation: "lock", errno: e)
                    }
                }
            }
            // The previous holder may have renamed a new file over the path: lock that one instead.
            var mine = stat(), now = stat()
            if fstat(fd, &mine) == 0, stat(path, &now) == 0, mine.st_dev == now.st_dev, mine.st_ino == now.st_ino {
                self.fd = fd
                return
            }
            close(fd)
        }
    }

    deinit { close(fd) }

    private static func kindIsLockable(_ st: stat) -> Bool {
        let kind = st.st_mode & S_IFMT
        return kind == S_IFREG || kind == S_IFDIR
    }
}
