import Foundation

/// A directory output built under a hidden temporary name beside its final path and renamed into
/// place only when every file in it is complete (same contract as `OutputFile`).
public final class OutputDirectory {
    public let path: String
    public let tempPath: String
    private let overwrite: Bool
    private var done = false

    public init(path: String, overwrite: Bool) throws {
        self.path = path
        self.overwrite = overwrite
        let fm = FileManager.default
        guard !path.isEmpty else { throw FormatError.emptyOutputPath }
        var st = stat()
        if lstat(path, &st) == 0, !overwrite { throw FormatError.outputExists(path: path) }
        let (dir, base) = splitPath(path)
        OutputFile.removeStaleTemps(inDirectory: dir.isEmpty ? "." : dir)
        tempPath = (dir.isEmpty ? "" : dir + "/") + "." + base + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        do { try fm.createDirectory(atPath: tempPath, withIntermediateDirectories: false) } catch {
            throw FormatError.io(path: tempPath, operation: "mkdir", errno: errno == 0 ? EIO : errno)
        }
    }

    deinit { discard() }

    /// Path of a file inside the directory being built.
    public func file(_ name: String) -> String { tempPath + "/" + name }

    /// Writes a small file inside the directory.
    public func write(_ name: String, _ bytes: [UInt8]) throws {
        let out = try OutputFile(path: file(name))
        try out.write(bytes)
        try out.commit()
    }

    /// Renames the finished directory into place (replacing an existing one when overwriting).
    public func commit() throws {
        guard !done else { return }
        let fm = FileManager.default
        if !overwrite {
            // Atomic no-clobber: of two writers racing for one name, the second gets `.outputExists`.
            do { try renameNoReplace(tempPath, path) } catch {
                discard()
                throw error
            }
            done = true
            syncDirectory(of: path)
            return
        }
        if fm.fileExists(atPath: path) {
            do { try fm.removeItem(atPath: path) } catch {
                throw FormatError.io(path: path, operation: "remove", errno: EIO)
            }
        }
        guard rename(tempPath, path) == 0 else {
            let e = errno
            discard()
            throw FormatError.io(path: path, operation: "rename", errno: e)
        }
        done = true
        syncDirectory(of: path)
    }

    public func discard() {
        guard !done else { return }
        done = true
        try? FileManager.default.removeItem(atPath: tempPath)
    }
}
