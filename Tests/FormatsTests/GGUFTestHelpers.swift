import Foundation
@testable import Formats
import TestSupport

/// Opens `bytes` as a GGUF file through a real mapping (written to a temp file that is unlinked at once;
/// the mapping keeps the data alive).
func openGGUF(_ bytes: [UInt8]) throws -> GGUFFile {
    let path = NSTemporaryDirectory() + "wilke-gguf-\(UUID().uuidString).gguf"
    _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
    defer { try? FileManager.default.removeItem(atPath: path) }
    return try GGUFFile(path: path)
}

/// A handcrafted GGUF byte stream, valid by default (one key, one F32 tensor of 4 elements), with every
/// field overridable so a test can break exactly one rule.
struct CraftedGGUF {
    var magic: [UInt8] = Array("GGUF".utf8)
    var version: UInt32 = 3
    var kvCount: UInt64?
    var tensorCount: UInt64?
    var kvs: [[UInt8]] = [CraftedGGUF.kv("general.architecture", type: 8, CraftedGGUF.str("llama"))]
    var infos: [[UInt8]] = [CraftedGGUF.info("t", ne: [4], type: 0, offset: 0)]
    var alignment = 32
    var dataBytes = 16

    var bytes: [UInt8] {
        var out = magic
        out += Self.le(version)
        out += Self.le(tensorCount ?? UInt64(infos.count))
        out += Self.le(kvCount ?? UInt64(kvs.count))
        for kv in kvs { out += kv }
        for info in infos { out += info }
        while out.count % alignment != 0 { out.append(0) }
        out += [UInt8](repeating: 0x5A, count: dataBytes)
        return out
    }

    static func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
    static func str(_ s: String) -> [UInt8] { rawStr(Array(s.utf8)) }
    static func rawStr(_ b: [UInt8]) -> [UInt8] { le(UInt64(b.count)) + b }
    static func kv(_ key: String, type: UInt32, _ body: [UInt8]) -> [UInt8] { str(key) + le(type) + body }
    static func rawKV(_ key: [UInt8], type: UInt32, _ body: [UInt8]) -> [UInt8] { rawStr(key) + le(type) + body }
    static func info(_ name: String, ne: [Int64], type: UInt32, offset: UInt64) -> [UInt8] {
        var out = str(name) + le(UInt32(ne.count))
        for d in ne { out += le(d) }
        return out + le(type) + le(offset)
    }
    /// The body of an array value: element type, count, then the already-encoded elements.
    static func array(_ type: UInt32, count: UInt64, _ elements: [UInt8] = []) -> [UInt8] {
        le(type) + le(count) + elements
    }
}


extension Array where Element == UInt8 {
    init(hex: String) {
        var out: [UInt8] = []
        out.reserveCapacity(hex.count / 2)
        var it = hex.utf8.makeIterator()
        func nibble(_ c: UInt8) -> UInt8 { c <= 57 ? c - 48 : (c | 0x20) - 87 }
        while let a = it.next(), let b = it.next() { out.append(nibble(a) << 4 | nibble(b)) }
        self = out
    }
}
