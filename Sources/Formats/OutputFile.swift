import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An output written beside its final path and renamed into place only when complete, so a reader
/// never sees a partial file and an interrupted run leaves nothing behind but a hidden temp file
/// (`.NAME.tmp-PID-N`) that the next run in that directory removes. Usage: create, write, `commit()`;
/// on any error call `discard()` (deinit discards too).
///
/// Three ways to land on the final path:
/// - new (`overwrite: false`): the rename itself refuses an existing path (`renameat2`
///   `RENAME_NOREPLACE`, or `link` where that is missing), so of two writers racing for one name
///   exactly one wins and the other gets `.outputExists`; a dangling symlink counts as existing.
/// - replace (`overwrite: true`, `--force`): renamed over whatever is there, under the target's
///   `FileLock` so it never lands in the middle of another writer's in-place rewrite.
/// - in place (`inPlace`): the file's real path (through symlinks, e.g. the Hugging Face cache's
///   snapshot → blob links) is rewritten, keeping its mode and, where permitted, its owner; refused
///   for a file with other hard links unless allowed (those names would keep the old bytes), and
///   refused if the file was replaced since it was read.
public final class OutputFile {
    public let path: String
    public let tempPath: String
    public let fd: Int32
    private let landing: Landing
    private var done = false

    private enum Landing {
        case new
        case replace
        case inPlace(identity: (device: UInt64, inode: UInt64))
    }

    /// - Parameter overwrite: replace an existing file at `path`; otherwise refuse with `.outputExists`.
    public convenience init(path: String, overwrite: Bool = false, mode: mode_t = 0o644) throws {
        try OutputFile.checkDestination(path, overwrite: overwrite)
        try self.init(final: path, landing: overwrite ? .replace : .new, mode: mode)
    }

    private init(final: String, landing: Landing, mode: mode_t) throws {
        path = final
        self.landing = landing
        let (dir, base) = splitPath(final)
        OutputFile.removeStaleTemps(inDirectory: dir.isEmpty ? "." : dir)
        tempPath = (dir.isEmpty ? "" : dir + "/") + "." + base + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        fd = open(tempPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else { throw FormatError.io(path: tempPath, operation: "create", errno: errno) }
    }

    /// An in-place rewrite of the existing regular file `path`. `expected` is the (device, inode) of
    /// the file as it was read; if the path names another file by commit time, the commit is refused.
    /// The whole of `bytes` as a new file at `path`: temp file, fsync, rename, and the temp removed on
    /// any failure (nothing partial is left).
    public static func write(_ bytes: [UInt8], to path: String, overwrite: Bool, mode: mode_t = 0o644) throws {
        let out = try OutputFile(path: path, overwrite: overwrite, mode: mode)
        do {
            try out.write(bytes)
            try out.commit()
        } catch {
            out.discard()
            throw error
        }
    }

    public static func inPlace(_ path: String, expected: (device: UInt64, inode: UInt64)?, allowHardLinks: Bool) throws -> OutputFile {
        guard let real = realpath(path, nil) else { throw FormatError.io(path: path, operation: "resolve", errno: errno) }
        let target = String(cString: real)
        free(real)
        var st = stat()
        guard stat(target, &st) == 0 else { throw FormatError.io(path: target, operation: "stat", errno: errno) }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw FormatError.notAFile(path: path, kind: FileAccess.kind(ofMode: st.st_mode)) }
        let identity = (UInt64(st.st_dev), UInt64(st.st_ino))
        if let expected, expected != identity { throw FormatError.changedWhileWriting(path: path) }
        if st.st_nlink > 1, !allowHardLinks { throw FormatError.hardLinked(path: path, links: Int(st.st_nlink)) }
        let out = try OutputFile(final: target, landing: .inPlace(identity: identity), mode: 0o600)
        // Owner first: chown clears set-id bits, which the chmod then restores. Not being allowed to
        // give the file away (EPERM, not root) leaves it owned by us, which is all we can do.
        _ = fchown(out.fd, st.st_uid, st.st_gid)
        guard fchmod(out.fd, st.st_mode & 0o7777) == 0 else {
            let e = errno
            out.discard()
            throw FormatError.io(path: out.tempPath, operation: "chmod", errno: e)
        }
        return out
    }

    /// Refuses, before anything is written, an output path that can never work: empty, a directory,
    /// or (without `overwrite`) any existing entry, dangling symlinks included.
    static func checkDestination(_ path: String, overwrite: Bool) throws {
        guard !path.isEmpty else { throw FormatError.emptyOutputPath }
        var st = stat()
        guard lstat(path, &st) == 0 else { return }
        if FileAccess.isDirectory(path) { throw FormatError.outputIsDirectory(path: path) }
        if !overwrite { throw FormatError.outputExists(path: path) }
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
        done = true
        do {
            switch landing {
            case .new:
                try renameNoReplace(tempPath, path)
            case .replace:
                // Wait for an in-place writer of the current file to finish rather than cut it short.
                var st = stat()
                let lock = lstat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG ? try? FileLock(path: path) : nil
                try withExtendedLifetime(lock) { try rename(tempPath, path) }
            case let .inPlace(identity):
                var st = stat()
                guard stat(path, &st) == 0, (UInt64(st.st_dev), UInt64(st.st_ino)) == identity else {
                    throw FormatError.changedWhileWriting(path: path)
                }
                try rename(tempPath, path)
            }
        } catch {
            unlink(tempPath)
            throw error
        }
        syncDirectory(of: path)
    }

    /// Removes the temp file; the final path is untouched.
    public func discard() {
        guard !done else { return }
        done = true
        close(fd)
        unlink(tempPath)
    }

    private func rename(_ from: String, _ to: String) throws {
        guard Glibc.rename(from, to) == 0 else { throw FormatError.io(path: to, operation: "rename", errno: errno) }
    }

    /// Removes hidden temp outputs (`.NAME.tmp-PID-N`, files or directories) in `dir` whose process no
    /// longer exists (killed mid-write), so a kill -9 leaves nothing behind for long. A PID that is
    /// alive, or not ours to signal, keeps its temp files.
    public static func removeStaleTemps(inDirectory dir: String) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else { return }
        for name in names where name.hasPrefix(".") {
            guard let pid = tempOwner(name), pid != getpid() else { continue }
            if kill(pid, 0) != 0, errno == ESRCH { try? FileManager.default.removeItem(atPath: dir + "/" + name) }
        }
    }

    /// The PID in a temp name `.NAME.tmp-PID-N`, nil for any other name.
    static func tempOwner(_ name: String) -> pid_t? {
        guard let marker = name.range(of: ".tmp-", options: .backwards) else { return nil }
        let parts = name[marker.upperBound...].split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2, let pid = pid_t(parts[0]), pid > 0, UInt32(parts[1]) != nil else { return nil }
        return pid
    }
}

/// Renames `from` to `to` only if `to` does not exist, atomically: `renameat2(RENAME_NOREPLACE)`, or
/// `link` + `unlink` for files where the kernel or file system lacks it. Throws `.outputExists`.
func renameNoReplace(_ from: String, _ to: String) throws {
    if let renameat2 = NoReplaceRename.function {
        if renameat2(AT_FDCWD, from, AT_FDCWD, to, NoReplaceRename.flag) == 0 { return }
        let e = errno
        if e == EEXIST { throw FormatError.outputExists(path: to) }
        guard e == EINVAL || e == ENOSYS || e == ENOTSUP else { throw FormatError.io(path: to, operation: "rename", errno: e) }
    }
    if link(from, to) == 0 { unlink(from); return }
    let e = errno
    if e == EEXIST { throw FormatError.outputExists(path: to) }
    // No hard links here either (FAT, some network file systems): the best left is check, then rename.
    guard e == EPERM || e == ENOTSUP || e == EXDEV || e == EISDIR else { throw FormatError.io(path: to, operation: "rename", errno: e) }
    var st = stat()
    if lstat(to, &st) == 0 { throw FormatError.outputExists(path: to) }
    guard rename(from, to) == 0 else { throw FormatError.io(path: to, operation: "rename", errno: errno) }
}

/// glibc's `renameat2` (declared only under _GNU_SOURCE, which Swift's Glibc module does not set),
/// looked up once at run time; nil where the C library lacks it.
private enum NoReplaceRename {
    typealias Function = @convention(c) (Int32, UnsafePointer<CChar>, Int32, UnsafePointer<CChar>, UInt32) -> Int32
    static let flag: UInt32 = 1  // RENAME_NOREPLACE
    static let function: Function? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "renameat2") else { return nil }
        return unsafeBitCast(symbol, to: Function.self)
    }()
}

/// ("dir", "name") of a path; dir is "" for a bare file name.
func splitPath(_ path: String) -> (String, String) {
    guard let slash = path.lastIndex(of: "/") else { return ("", path) }
    if slash == path.startIndex { return ("/", String(path.dropFirst())) }
    return (String(path[..<slash]), String(path[path.index(after: slash)...]))
}

func syncDirectory(of path: String) {
    let (dir, _) = splitPath(path)
    let d = open(dir.isEmpty ? "." : dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    if d >= 0 { fsync(d); close(d) }
}
