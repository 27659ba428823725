import Foundation
import Formats
#if canImport(Glibc)
import Glibc
#endif

/// New content of one tensor in a rewritten checkpoint.
struct TensorReplacement {
    var dtype: DType
    /// Called once while the output is written, in data order: exactly the tensor's new bytes.
    var produce: () throws -> [UInt8]
}

/// Rewrites a checkpoint with some tensors replaced and a new provenance record, streaming: untouched
/// byte ranges go from the input file to the output with `copy_file_range` (in-kernel, reflinked where
/// the file system can), so memory holds one replaced tensor at a time whatever the file size. Outputs
/// are atomic (`OutputFile` / `OutputDirectory`: temp name, fsync, rename); on any error, including
/// EFBIG / ENOSPC, the temp output is removed and the input is untouched.
enum CheckpointRewriter {
    /// - Parameters:
    ///   - replacements: by stored tensor name.
    ///   - output: the new file or directory; nil rewrites the checkpoint in place (temp + rename over
    ///     each rewritten file, through symlinks, keeping mode and owner; a directory's untouched shards
    ///     stay as they are). The caller holds a `FileLock` on the checkpoint from before it was opened.
    ///   - breakHardLinks: in place, rewrite a file that has other hard links (they keep the old bytes)
    ///     instead of refusing.
    static func write(_ ckpt: Checkpoint, replacements: [String: TensorReplacement], record: [AppliedPatch],
                      output: String?, overwrite: Bool, breakHardLinks: Bool = false, progress: ((Int, Int) -> Void)? = nil) throws {
        var done = 0
        let total = max(1, replacements.count)
        let counted = replacements.mapValues { r in
            TensorReplacement(dtype: r.dtype, produce: { let b = try r.produce(); done += 1; progress?(done, total); return b })
        }
        switch ckpt.format {
        case .gguf:
            let g = ckpt.gguf!
            try writeFile(output, overwrite: overwrite, breakHardLinks: breakHardLinks, source: g.file) { out, fd in
                try writeGGUF(g, fd: fd, replacements: counted, record: record, to: out)
            }
        case .safetensors:
            let st = ckpt.safetensors[0]
            try writeFile(output, overwrite: overwrite, breakHardLinks: breakHardLinks, source: st.file) { out, fd in
                try writeSafetensors(st, fd: fd, replacements: counted, metadata: Provenance.safetensors(st.metadata, record), to: out)
            }
        case .huggingFaceDirectory:
            try writeDirectory(ckpt, replacements: counted, record: record, output: output, overwrite: overwrite,
                               breakHardLinks: breakHardLinks)
        }
        progress?(total, total)
    }

    /// One output file from one source file (`path` nil: the source itself, in place), commits or discards.
    private static func writeFile(_ path: String?, overwrite: Bool, breakHardLinks: Bool = false, source: MappedFile,
                                  _ body: (OutputFile, Int32) throws -> Void) throws {
        let out = try path.map { try OutputFile(path: $0, overwrite: overwrite) }
            ?? OutputFile.inPlace(source.path, expected: source.identity, allowHardLinks: breakHardLinks)
        do {
            try body(out, source.fd)
            try out.commit()
        } catch {
            out.discard()
            throw error
        }
    }

    // MARK: GGUF

    private static func writeGGUF(_ g: GGUFFile, fd: Int32, replacements: [String: TensorReplacement], record: [AppliedPatch],
                                  to out: OutputFile) throws {
        var w = GGUFWriter(version: g.version, metadata: Provenance.gguf(g.metadata, record))
        for t in g.tensors {
            w.addTensor(name: t.name, ne: t.ne, dtype: replacements[t.name]?.dtype ?? t.dtype, source: .fill { _ in })
        }
        let header = try w.headerBytes()  // validates names, types and sizes before any data is written
        let sizes = try w.tensorByteCounts()
        let alignment = try w.resolvedAlignment()
        try out.write(header)
        // A run of untouched tensors keeps its relative layout (same sizes, same alignment), so it is
        // one copy of the source bytes from the run's first tensor to the end of its last tensor's data.
        var runs = RunCopier(fd: fd, file: g.file, out: out)
        for (t, size) in zip(g.tensors, sizes) {
            let pad = alignUp(size, alignment) - size
            if let r = replacements[t.name] {
                try runs.flush()
                let bytes = try r.produce()
                guard bytes.count == size else { throw PatchError.shapeMismatch(tensor: t.name, expected: "\(size) bytes", found: "\(bytes.count) bytes") }
                try out.write(bytes)
                try out.writeZeros(pad)
            } else {
                let start = g.dataOffset + t.offset
                try runs.add(start..<(start + size), paddedEnd: start + size + pad)
            }
        }
        try runs.flush()
    }

    // MARK: safetensors

    private static func writeSafetensors(_ st: SafetensorsFile, fd: Int32, replacements: [String: TensorReplacement],
                                         metadata: [String: String], to out: OutputFile) throws {
        let entries = st.tensors.map { t in
            SafetensorsWriter.Entry(name: t.name, dtype: replacements[t.name]?.dtype ?? t.dtype, shape: t.shape, source: .fill { _ in })
        }
        let (header, order, offsets) = try SafetensorsWriter.header(for: entries, metadata: metadata)
        try out.write(header)
        var runs = RunCopier(fd: fd, file: st.file, out: out)
        for i in order {
            let t = st.tensors[i]
            if let r = replacements[t.name] {
                try runs.flush()
                let bytes = try r.produce()
                guard bytes.count == offsets[i].count else {
                    throw PatchError.shapeMismatch(tensor: t.name, expected: "\(offsets[i].count) bytes", found: "\(bytes.count) bytes")
                }
                try out.write(bytes)
            } else {
                try runs.add(t.fileRange, paddedEnd: t.fileRange.upperBound)
            }
        }
        try runs.flush()
    }

    // MARK: Hugging Face directories

    private static func writeDirectory(_ ckpt: Checkpoint, replacements: [String: TensorReplacement], record: [AppliedPatch],
                                       output: String?, overwrite: Bool, breakHardLinks: Bool) throws {
        let sharded = Provenance.isSharded(ckpt)
        let shardNames = ckpt.safetensors.map { ($0.path as NSString).lastPathComponent }
        // A single shard carries the record in its own header, so it is always rewritten.
        let touched = Set(ckpt.safetensors.indices.filter { s in
            !sharded || ckpt.safetensors[s].tensors.contains { replacements[$0.name] != nil }
        })
        func shardMetadata(_ s: Int) -> [String: String] {
            sharded ? ckpt.safetensors[s].metadata : Provenance.safetensors(ckpt.safetensors[s].metadata, record)
        }

        if let output {
            let dir = try OutputDirectory(path: output, overwrite: overwrite)
            do {
                let names = try FileManager.default.contentsOfDirectory(atPath: ckpt.path).sorted()
                for name in names where !name.hasPrefix(".") && name != Provenance.sidecarName {
                    let path = ckpt.path + "/" + name
                    var isDir: ObjCBool = false
                    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir), !isDir.boolValue else { continue }
                    if let s = shardNames.firstIndex(of: name), touched.contains(s) {
                        try writeFile(dir.file(name), overwrite: false, source: ckpt.safetensors[s].file) { out, fd in
                            try writeSafetensors(ckpt.safetensors[s], fd: fd, replacements: replacements, metadata: shardMetadata(s), to: out)
                        }
                    } else {
                        try copyWholeFile(path, to: dir.file(name))
                    }
                }
                if sharded, !record.isEmpty { try dir.write(Provenance.sidecarName, Provenance.sidecar(record)) }
                try dir.commit()
            } catch {
                dir.discard()
                throw error
            }
            return
        }

        // In place: every rewritten file is complete on disk before the first rename.
        var pending: [OutputFile] = []
        do {
            for s in touched.sorted() {
                let st = ckpt.safetensors[s]
                let out = try OutputFile.inPlace(st.path, expected: st.file.identity, allowHardLinks: breakHardLinks)
                pending.append(out)
                try writeSafetensors(st, fd: st.file.fd, replacements: replacements, metadata: shardMetadata(s), to: out)
            }
            let sidecar = ckpt.path + "/" + Provenance.sidecarName
            if sharded, !record.isEmpty {
                let out = FileManager.default.fileExists(atPath: sidecar)
                    ? try OutputFile.inPlace(sidecar, expected: nil, allowHardLinks: breakHardLinks)
                    : try OutputFile(path: sidecar, overwrite: true)
                pending.append(out)
                try out.write(Provenance.sidecar(record))
            }
            for out in pending { try out.commit() }
            if sharded, record.isEmpty { unlink(sidecar) }
        } catch {
            for out in pending { out.discard() }
            throw error
        }
    }

    private static func copyWholeFile(_ path: String, to dest: String) throws {
        let file = try MappedFile(path: path)
        try writeFile(dest, overwrite: false, source: file) { out, fd in
            var runs = RunCopier(fd: fd, file: file, out: out)
            try runs.add(0..<file.count, paddedEnd: file.count)
            try runs.flush()
        }
    }
}

/// Coalesces adjacent source ranges and copies them with `copy_file_range`, falling back to writing
/// from the mapping where the kernel cannot copy between these files.
private struct RunCopier {
    let fd: Int32
    let file: MappedFile
    let out: OutputFile
    private var run: (data: Range<Int>, paddedEnd: Int)?

    init(fd: Int32, file: MappedFile, out: OutputFile) {
        self.fd = fd
        self.file = file
        self.out = out
    }

    /// Appends source bytes `range`, followed by zero padding up to `paddedEnd` in the output.
    mutating func add(_ range: Range<Int>, paddedEnd: Int) throws {
        if let r = run, r.paddedEnd == range.lowerBound {
            run = (r.data.lowerBound..<range.upperBound, paddedEnd)
        } else {
            try flush()
            run = (range, paddedEnd)
        }
    }

    mutating func flush() throws {
        guard let r = run else { return }
        run = nil
        try copy(r.data)
        try out.writeZeros(r.paddedEnd - r.data.upperBound)
    }

    private func copy(_ range: Range<Int>) throws {
        var offset = off_t(range.lowerBound)
        var left = range.count
        while left > 0 {
            guard let copyFileRange = KernelCopy.function else {
                try out.write(file.slice(Int(offset)..<range.upperBound))
                return
            }
            let n = copyFileRange(fd, &offset, out.fd, nil, min(left, 1 << 30), 0)
            if n > 0 { left -= n; continue }
            if n == 0 { throw FormatError.io(path: file.path, operation: "read", errno: EIO) }
            let e = errno
            if e == EINTR { continue }
            if e == EXDEV || e == ENOSYS || e == EINVAL || e == EOPNOTSUPP || e == EBADF {
                try out.write(file.slice(Int(offset)..<range.upperBound))
                return
            }
            throw FormatError.io(path: out.path, operation: "write", errno: e)
        }
    }
}


/// glibc's `copy_file_range` (declared only under _GNU_SOURCE, which Swift's Glibc module does not
/// set), looked up once at run time; nil where the C library lacks it.
private enum KernelCopy {
    typealias Function = @convention(c) (Int32, UnsafeMutablePointer<off_t>?, Int32, UnsafeMutablePointer<off_t>?, Int, UInt32) -> Int
    static let function: Function? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "copy_file_range") else { return nil }
        return unsafeBitCast(symbol, to: Function.self)
    }()
}
