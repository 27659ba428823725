import Foundation
import Testing
@_spi(Fuzzing) @testable import Formats
import TestSupport

/// The file layer of issue #16: non-blocking opens, atomic no-clobber outputs, in-place identity, the
/// stale-temp sweep, the sanitizer and the truncation message.
@Suite struct FileSafetyTests {
    @Test func sanitizerEscapesControlsAndCaps() {
        #expect(DisplayText.escaped("a\u{1B}[2Jb\u{0}\u{7F}") == "a\\x1b[2Jb\\x00\\x7f")
        #expect(DisplayText.escaped("x\u{202E}y\u{9B}z") == "x\\u{202e}y\\u{009b}z")
        #expect(DisplayText.escaped("one\ntwo", keepNewlines: true) == "one\ntwo")
        #expect(DisplayText.escaped("one\ntwo") == "one\\x0atwo")
        #expect(DisplayText.escaped("Ünïcødé → ok") == "Ünïcødé → ok")
        let long = String(repeating: "k", count: 290_000)
        #expect(DisplayText.escaped(long, limit: 10) == "kkkkkkkkkk… (290000 bytes)")
        // Error descriptions quote names through it, so a corrupted key cannot flood the terminal.
        #expect(FormatError.duplicateKey(long + "\u{1B}").description.count < 200)
    }

    @Test func fifoIsRefusedWithoutBlocking() throws {
        let dir = try TestPaths.scratch("fifo")
        defer { try? FileManager.default.removeItem(at: dir) }
        let fifo = dir.appendingPathComponent("f").path
        #expect(mkfifo(fifo, 0o600) == 0)
        #expect(throws: FormatError.notAFile(path: fifo, kind: "a FIFO")) { try MappedFile(path: fifo) }
        #expect(throws: FormatError.notAFile(path: fifo, kind: "a FIFO")) { try FileAccess.read(fifo) }
        #expect(throws: FormatError.notAFile(path: dir.path, kind: "a directory")) { try MappedFile(path: dir.path) }
    }

    /// Released pages read back the same bytes, in a file mapping and in the fuzzers' anonymous copy
    /// (where MADV_DONTNEED would zero them: it must not be applied there).
    @Test func releasedPagesReadBackTheSameBytes() throws {
        let dir = try TestPaths.scratch("release-pages")
        let path = dir.path + "/blob.bin"
        let bytes = (0..<(5 * 4096 + 123)).map { UInt8(truncatingIfNeeded: $0 &* 131 &+ 7) }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let mapped = try MappedFile(path: path)
        let copy = try bytes.withUnsafeBytes { try MappedFile(copying: $0, path: "blob") }
        for m in [mapped, copy] {
            #expect(Array(m.bytes) == bytes)
            m.releasePages(100..<(4 * 4096 + 5))
            m.releasePages(0..<m.count)
            #expect(Array(m.bytes) == bytes)
        }
    }

    @Test func newOutputsNeverClobber() throws {
        let dir = try TestPaths.scratch("noclobber")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("out").path
        let first = try OutputFile(path: path), second = try OutputFile(path: path)
        try first.write([1])
        try second.write([2])
        try first.commit()
        // The second writer passed the early check too; the rename itself refuses.
        #expect(throws: FormatError.outputExists(path: path)) { try second.commit() }
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == Data([1]))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["out"])
        #expect(throws: FormatError.emptyOutputPath) { try OutputFile(path: "") }
        #expect(throws: FormatError.outputIsDirectory(path: dir.path)) { try OutputFile(path: dir.path, overwrite: true) }
    }

    @Test func inPlaceRefusesAReplacedFile() throws {
        let dir = try TestPaths.scratch("inplace")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("m").path
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: path))
        let read = try MappedFile(path: path)
        let out = try OutputFile.inPlace(path, expected: read.identity, allowHardLinks: false)
        try out.write([9])
        // Another writer renames a new file over the path meanwhile: our commit must not undo theirs.
        try Data([4]).write(to: URL(fileURLWithPath: path + ".new"))
        #expect(rename(path + ".new", path) == 0)
        #expect(throws: FormatError.changedWhileWriting(path: path)) { try out.commit() }
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == Data([4]))
    }

    @Test func staleTempsOfDeadProcessesAreSwept() throws {
        let dir = try TestPaths.scratch("stale")
        defer { try? FileManager.default.removeItem(at: dir) }
        // PID 2^22 + 1 is above Linux's pid_max limit, so no process can have it.
        let dead = dir.appendingPathComponent(".model.gguf.tmp-4194305-77").path
        let mine = dir.appendingPathComponent(".other.gguf.tmp-\(getpid())-78").path
        let unrelated = dir.appendingPathComponent(".notes.tmp-x").path
        for p in [dead, mine, unrelated] { #expect(FileManager.default.createFile(atPath: p, contents: Data([0]))) }
        #expect(OutputFile.tempOwner(".a.b.tmp-12-34") == 12)
        #expect(OutputFile.tempOwner(".notes.tmp-x") == nil)
        // Any output in the directory sweeps it, whatever its own name.
        let out = try OutputFile(path: dir.appendingPathComponent("new").path)
        out.discard()
        #expect(!FileManager.default.fileExists(atPath: dead))
        #expect(FileManager.default.fileExists(atPath: mine) && FileManager.default.fileExists(atPath: unrelated))
    }

    @Test func truncatedGGUFSaysSo() throws {
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: TestPaths.fixture("FormatsTests", "gguf/every_type.gguf"))))
        // Cut inside the metadata: the header's counts no longer fit in what is left.
        let cut = Array(bytes.prefix(40))
        do {
            _ = try openGGUF(cut)
            Issue.record("a truncated file opened")
        } catch let e as FormatError {
            #expect(e.description.hasPrefix("file is truncated"), "\(e)")
        }
    }

    /// Regression of the `apply` and `config` fuzz targets' crashes: a GGUF or config.json whose head
    /// count is 0 trapped dividing d_model by it before validation; now it is the validation error.
    @Test func zeroHeadsIsAnErrorNotATrap() throws {
        let crash = TestPaths.fixture("FormatsTests", "fuzz/apply-heads-zero.gguf")
        // The header opens (header tools read any model); the hyper-parameters are the validation error.
        #expect(throws: FormatError.self) { try Checkpoint.open(crash).requiredConfig() }
        #expect(try Checkpoint.open(crash).config == nil)
        let meta: [String: GGUFValue] = ["general.architecture": .string("llama"), "llama.block_count": .uint32(1),
                                         "llama.embedding_length": .uint32(32), "llama.attention.head_count": .uint32(0),
                                         "llama.context_length": .uint32(64), "llama.vocab_size": .uint32(16)]
        #expect(throws: FormatError.nonPositiveHyperparameter("heads", value: 0)) {
            try ModelConfig(gguf: { meta[$0] }, hasOutputTensor: false)
        }
        // The `config` fuzz target's crash: num_attention_heads 0 with head_dim missing.
        let crashConfig = try FileAccess.read(TestPaths.fixture("FormatsTests", "fuzz/config-heads-zero.json"))
        #expect(throws: FormatError.self) { try ModelConfig(configJSON: crashConfig, path: "config.json") }
        for config in [#"{"model_type":"llama","num_hidden_layers":1,"hidden_size":32,"num_attention_heads":0,"intermediate_size":8,"vocab_size":4,"max_position_embeddings":8}"#,
                       #"{"model_type":"gptj","n_layer":1,"n_embd":-9223372036854775808,"n_head":-1,"vocab_size":4,"n_positions":8}"#] {
            #expect(throws: FormatError.self) { try ModelConfig(configJSON: Data(config.utf8), path: "config.json") }
        }
    }
}
