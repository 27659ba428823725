import Foundation

/// A directory output built under a hidden temporary name beside its final path and renamed into
/// place only when every file in it is complete (same contract as `OutputFile`).
public final class OutputDirectory {
    public let path: String
    public let tempPath: String
    private var done = false

    public init(path: String, overwrite: Bool) throws {
        self.path = path
        let fm = FileManager.default
        if fm.fileExists(atPath: path), !overwrite { throw FormatError.outputExists(path: path) }
        let (dir, base) = splitPath(path)
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
