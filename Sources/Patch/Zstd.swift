import CZstd

/// zstd one-shot compression with a content checksum; the only file that imports CZstd.
public enum Zstd {
    /// Compresses `input` into one frame with the content size and a 32-bit content checksum.
    public static func compress(_ input: UnsafeRawBufferPointer, level: Int32 = 3) throws -> [UInt8] {
        guard let cctx = ZSTD_createCCtx() else { throw PatchError.zstd("cannot create a compression context") }
        defer { ZSTD_freeCCtx(cctx) }
        try check(ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level))
        try check(ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1))
        var out = [UInt8](repeating: 0, count: ZSTD_compressBound(input.count))
        let n = try out.withUnsafeMutableBytes { dst in
            try check(ZSTD_compress2(cctx, dst.baseAddress, dst.count, input.baseAddress, input.count))
        }
        out.removeSubrange(n...)
        return out
    }

    /// Decompresses exactly one frame that must state its content size, refusing anything above
    /// `maxSize` (a corrupt header must not make us allocate gigabytes) and any trailing bytes.
    public static func decompress(_ frame: UnsafeRawBufferPointer, maxSize: Int) throws -> [UInt8] {
        // A zstd frame (RFC 8878 §3.1.1) starts with the magic 28 B5 2F FD and a frame header descriptor
        // whose bit 2 says whether an XXH64 content checksum follows the data. PATCH_FORMAT §1 requires
        // one, so corruption inside the compressed blocks is always caught by zstd itself.
        guard frame.count >= 5, frame.prefix(4).elementsEqual([0x28, 0xB5, 0x2F, 0xFD]) else { throw PatchError.zstd("not a zstd frame") }
        guard frame[4] & 0x04 != 0 else { throw PatchError.zstd("frame has no content checksum (the format requires one)") }
        let size = ZSTD_getFrameContentSize(frame.baseAddress, frame.count)
        if size == ZSTD_CONTENTSIZE_ERROR { throw PatchError.zstd("not a zstd frame") }
        if size == ZSTD_CONTENTSIZE_UNKNOWN { throw PatchError.zstd("frame does not state its content size") }
        guard size <= UInt64(maxSize) else { throw PatchError.zstd("frame content of \(size) bytes exceeds the limit") }
        let compressed = try check(ZSTD_findFrameCompressedSize(frame.baseAddress, frame.count))
        guard compressed == frame.count else { throw PatchError.zstd("\(frame.count - compressed) trailing bytes after the frame") }
        guard let dctx = ZSTD_createDCtx() else { throw PatchError.zstd("cannot create a decompression context") }
        defer { ZSTD_freeDCtx(dctx) }
        var out = [UInt8](repeating: 0, count: Int(size))
        let n = try out.withUnsafeMutableBytes { dst in
            try check(ZSTD_decompressDCtx(dctx, dst.baseAddress, dst.count, frame.baseAddress, frame.count))
        }
        guard n == Int(size) else { throw PatchError.zstd("frame decoded to \(n) bytes, header says \(size)") }
        return out
    }

    @discardableResult
    private static func check(_ code: Int) throws -> Int {
        if ZSTD_isError(code) != 0 { throw PatchError.zstd(String(cString: ZSTD_getErrorName(code))) }
        return code
    }
}
