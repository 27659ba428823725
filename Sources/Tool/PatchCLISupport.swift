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
    guard let h = FileHandle(forReadingAtPath: path) else { return false }
    defer { try? h.close() }
    return (try? h.read(upToCount: PatchFormat.magic.count)).map { Array($0) == PatchFormat.magic } ?? false
}

/// Writes a patch atomically (temp + fsync + rename); refuses an existing path unless `overwrite`.
/// "-" writes it to standard output (whole, after encoding succeeded), for pipes: `stack a b -o - | show -`.
func writePatch(_ patch: Patch, to path: String, overwrite: Bool) throws {
    let bytes = try patch.encode()
    if path == "-" {
        FileHandle.standardOutput.write(Data(bytes))
        return
    }
    try naming(path) {
        let out = try OutputFile(path: path, overwrite: overwrite)
        do {
            try out.write(bytes)
            try out.commit()
        } catch {
            out.discard()
            throw error
        }
    }
}

/// Outputs are written with write(2): past `ulimit -f` the kernel would kill us with SIGXFSZ before
/// the temp file could be removed. Ignored, the write fails with EFBIG and the output is discarded.
func ignoreFileSizeSignal() { signal(SIGXFSZ, SIG_IGN) }

func printJSON(_ object: Any) throws {
    print(String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted]), as: UTF8.self))
}

func short(_ id: String) -> String { String(id.prefix(12)) }

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

    @Flag(name: .long, help: "Rewrite the input itself (atomically, file by file).")
    var inPlace = false

    @Flag(name: .long, help: "Go on despite hash or model mismatches and the checkpoint's record; replace an existing output.")
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
        let ps = try patches.map(readPatch)
        let ckpt = try naming(model) { try Checkpoint.open(model) }
        let bar = ProgressBar(verb)
        let report = try naming(model) { try body(ps, ckpt, out, PatchingOptions(force: force, overwrite: force), bar.update) }
        try printPatchingReport(report, verb: verb == "apply" ? "applied" : "reverted", patches: ps, output: out ?? model, json: json)
    }
}
