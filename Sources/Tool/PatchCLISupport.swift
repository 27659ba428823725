import ArgumentParser
import Foundation
import Formats
import Patch

// Shared by the patch verbs (apply, revert, stack, diff, show, log, verify).

/// Reads and fully checks a .wpatch file ("-": standard input); errors name the file.
func readPatch(_ path: String) throws -> Patch {
    if path == "-" {
        let bytes = FileHandle.standardInput.readDataToEndOfFile()
        return try naming("<stdin>") { try Patch.decode(Array(bytes)) }
    }
    return try naming(path) {
        let file = try MappedFile(path: path)
        return try Patch.decode(file.bytes)
    }
}

/// Whether `path` is a file starting with the .wpatch magic (diff takes patches or checkpoints).
func looksLikePatch(_ path: String) -> Bool {
    guard let f = try? FileAccess.openRegular(path) else { return false }  // never blocks on a FIFO
    defer { close(f.fd) }
    var head = [UInt8](repeating: 0, count: PatchFormat.magic.count)
    return read(f.fd, &head, head.count) == head.count && head == PatchFormat.magic
}

/// Writes a patch atomically (temp + fsync + rename); refuses an existing path unless `overwrite`.
/// "-" writes it to standard output (whole, after encoding succeeded), for pipes: `stack a b -o - | show -`.
func writePatch(_ patch: Patch, to path: String, overwrite: Bool) throws {
    let bytes = try patch.encode()
    if path == "-" {
        FileHandle.standardOutput.write(Data(bytes))
        return
    }
    try naming(path) { try OutputFile.write(bytes, to: path, overwrite: overwrite) }
}

/// Outputs are written with write(2): past `ulimit -f` the kernel would kill us with SIGXFSZ before
/// the temp file could be removed. Ignored, the write fails with EFBIG and the output is discarded.
func ignoreFileSizeSignal() { signal(SIGXFSZ, SIG_IGN) }

func printJSON(_ object: Any) throws {
    print(String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted]), as: UTF8.self))
}

/// Prints one line of text whose parts came from files (names, subjects, summaries), escaped by the
/// one sanitizer (DisplayText); JSON output goes through `printJSON` instead and stays exact.
func say(_ line: String) { print(DisplayText.escaped(line, limit: 2000)) }

func short(_ id: String) -> String { String(id.prefix(12)) }

/// Refuses an output path that cannot work before anything is computed or written: empty, an
/// existing entry without --force (dangling symlinks included), or a directory where a file goes.
func checkOutputPath(_ path: String, overwrite: Bool, directory: Bool) throws {
    guard !path.isEmpty else { throw FormatError.emptyOutputPath }
    var st = stat()
    guard lstat(path, &st) == 0 else { return }
    guard overwrite else { throw FormatError.outputExists(path: path) }
    if !directory, FileAccess.isDirectory(path) { throw FormatError.outputIsDirectory(path: path) }
}

/// The lock of an in-place rewrite; says on stderr why nothing happens while another writer holds it.
func lockCheckpoint(_ path: String) throws -> FileLock {
    try FileLock(path: path) { printErr("waiting for another wilke process writing \(DisplayText.escaped(path)) to finish…") }
}

/// Where apply / revert write: exactly one of `-o OUT` and `--in-place`.
func outputChoice(output: String?, inPlace: Bool) throws -> String? {
    switch (output, inPlace) {
    case (nil, false): throw CLIError("give an output with -o OUT, or --in-place")
    case (_?, true): throw CLIError("-o and --in-place exclude each other")
    case let (o?, false): return o
    case (nil, true): return nil
    }
}

/// The arguments `apply` and `revert` share: a checkpoint, patches in the order they are (or were)
/// applied, and where the result goes.
struct PatchingArguments: ParsableArguments {
    @Argument(help: "Checkpoint: .gguf, .safetensors, or a Hugging Face directory.")
    var model: String

    @Argument(help: "Patches, in the order they are (or were) applied.")
    var patches: [String]

    @Option(name: .shortAndLong, help: "Output checkpoint (same kind as the input).")
    var output: String?

    @Flag(name: .long, help: ArgumentHelp("Rewrite the input itself (atomically, file by file).", discussion: """
        Holds a lock on the checkpoint from reading to renaming, so a second wilke writing it waits (and says so). \
        A symlinked checkpoint (the Hugging Face cache: snapshot link -> blob) is edited at its target; mode and \
        owner are kept. A file with other hard links is refused (they would keep the old bytes) unless --force.
        """))
    var inPlace = false

    @Flag(name: .long, help: "Go on despite hash or model mismatches and the checkpoint's record; replace an existing output; break hard links in place.")
    var force = false

    @Flag(name: .long, help: "Print JSON.")
    var json = false

    func validate() throws {
        guard !patches.isEmpty else { throw ValidationError("give at least one patch") }
    }

    /// Opens everything and runs `body` (apply or revert) with a progress bar labelled `verb`.
    func run(_ verb: String, _ body: ([Patch], Checkpoint, String?, PatchingOptions, @escaping (Int, Int) -> Void) throws -> PatchingReport) throws {
        ignoreFileSizeSignal()
        let out = try outputChoice(output: output, inPlace: inPlace)
        if let out { try naming(out) { try checkOutputPath(out, overwrite: force, directory: FileAccess.isDirectory(model)) } }
        let ps = try patches.map(readPatch)
        // In place, the lock spans the whole read-modify-write: taken before the checkpoint is read.
        let lock = out == nil ? try naming(model) { try lockCheckpoint(model) } : nil
        let report = try withExtendedLifetime(lock) {
            let ckpt = try naming(model) { try Checkpoint.open(model) }
            let bar = ProgressBar(verb)
            let options = PatchingOptions(force: force, overwrite: force, breakHardLinks: force)
            return try naming(model) { try body(ps, ckpt, out, options, bar.update) }
        }
        try printPatchingReport(report, verb: verb == "apply" ? "applied" : "reverted", patches: ps, output: out ?? model, json: json)
    }
}
