import Foundation
import Testing
@testable import Formats
import TestSupport

/// One crafted file per rule of ggml's reader (FORMATS.md §2.3), each expecting its own error case.
@Suite struct GGUFValidationTests {
    typealias C = CraftedGGUF

    @Test func craftedBaselineIsValid() throws {
        let f = try openGGUF(C().bytes)
        #expect(f.version == 3)
        #expect(f.architecture == "llama")
        // 24-byte header + key (8 + 20 + 4 + 8 + 5) + info (8 + 1 + 4 + 8 + 4 + 8) = 102, padded to 128.
        #expect(f.headerEnd == 102 && f.dataOffset == 128)
        #expect(f.tensors == [GGUFTensorInfo(name: "t", ne: [4], dtype: .f32, offset: 0, byteCount: 16)])
        #expect(Array(f.data(f.tensors[0])) == [UInt8](repeating: 0x5A, count: 16))
    }

    @Test func badMagic() {
        var c = C(); c.magic = Array("GGUG".utf8)
        #expect(throws: FormatError.badMagic(found: Array("GGUG".utf8))) { try openGGUF(c.bytes) }
    }

    @Test func versions() throws {
        for (v, error) in [(0, FormatError.unsupportedVersion(0)), (1, .unsupportedVersion(1)), (4, .unsupportedVersion(4)),
                           (0x0001_0003, .unsupportedVersion(0x0001_0003))] as [(UInt32, FormatError)] {
            var c = C(); c.version = v
            #expect(throws: error) { try openGGUF(c.bytes) }
        }
        var v2 = C(); v2.version = 2
        #expect(try openGGUF(v2.bytes).version == 2)
    }

    /// A file written big-endian has version 3 stored as 00 00 00 03, i.e. 0x03000000 read LE.
    @Test func bigEndianRejected() {
        var c = C(); c.version = UInt32(3).byteSwapped
        #expect(throws: FormatError.bigEndian) { try openGGUF(c.bytes) }
    }

    @Test func implausibleCounts() {
        var c = C(); c.kvCount = UInt64.max
        #expect(throws: FormatError.tooManyItems(what: "metadata key", count: UInt64.max)) { try openGGUF(c.bytes) }
        c = C(); c.tensorCount = 1 << 40
        #expect(throws: FormatError.tooManyItems(what: "tensor", count: 1 << 40)) { try openGGUF(c.bytes) }
    }

    @Test func emptyKey() {
        var c = C(); c.kvs.append(C.kv("", type: 0, [1]))
        #expect(throws: FormatError.emptyKey(index: 1)) { try openGGUF(c.bytes) }
    }

    @Test func duplicateKey() {
        var c = C(); c.kvs.append(C.kv("general.architecture", type: 8, C.str("gpt2")))
        #expect(throws: FormatError.duplicateKey("general.architecture")) { try openGGUF(c.bytes) }
    }

    @Test func keyNotUTF8() {
        var c = C(); c.kvs.append(C.rawKV([0x61, 0xFF], type: 0, [1]))
        #expect(throws: FormatError.invalidUTF8(what: "metadata key 1")) { try openGGUF(c.bytes) }
    }

    @Test func invalidValueType() {
        var c = C(); c.kvs.append(C.kv("x", type: 13, [0]))
        #expect(throws: FormatError.invalidValueType(key: "x", type: 13)) { try openGGUF(c.bytes) }
        c = C(); c.kvs.append(C.kv("y", type: 9, C.array(0xFFFF_FFFF, count: 0)))
        #expect(throws: FormatError.invalidValueType(key: "y", type: 0xFFFF_FFFF)) { try openGGUF(c.bytes) }
    }

    @Test func invalidBool() {
        var c = C(); c.kvs.append(C.kv("b", type: 7, [2]))
        #expect(throws: FormatError.invalidBool(key: "b", value: 2)) { try openGGUF(c.bytes) }
        c = C(); c.kvs.append(C.kv("bs", type: 9, C.array(7, count: 2, [1, 0xFF])))
        #expect(throws: FormatError.invalidBool(key: "bs", value: 0xFF)) { try openGGUF(c.bytes) }
    }

    @Test func stringTooLong() {
        var c = C(); c.kvs.append(C.kv("s", type: 8, C.le(UInt64(1 << 30) + 1)))
        #expect(throws: FormatError.stringTooLong(length: (1 << 30) + 1)) { try openGGUF(c.bytes) }
    }

    @Test func stringLongerThanFileIsTruncation() {
        var c = C(); c.kvs.append(C.kv("s", type: 8, C.le(UInt64(1 << 20))))
        #expect { try openGGUF(c.bytes) } throws: { e in
            if case .truncated = e as? FormatError { return true } else { return false }
        }
    }

    @Test func arrayTooLong() {
        var c = C(); c.kvs.append(C.kv("a", type: 9, C.array(0, count: (1 << 30) + 1)))
        #expect(throws: FormatError.tooManyItems(what: "array element", count: (1 << 30) + 1)) { try openGGUF(c.bytes) }
    }

    /// 2^30 u64 elements would be 8 GiB: refused from the remaining byte count, before any allocation.
    @Test func arrayLongerThanFileIsTruncation() {
        var c = C(); c.kvs.append(C.kv("a", type: 9, C.array(10, count: 1 << 30)))
        #expect { try openGGUF(c.bytes) } throws: { e in
            if case .truncated = e as? FormatError { return true } else { return false }
        }
    }

    /// Nested arrays are read (GGUF spec) down to `maxArrayDepth` levels; one more level is refused.
    @Test func nestingDepthCap() throws {
        func nested(_ depth: Int) -> [UInt8] {  // depth arrays around a single u8 = 7
            depth == 1 ? C.array(0, count: 1, [7]) : C.array(9, count: 1, nested(depth - 1))
        }
        var ok = C(); ok.kvs.append(C.kv("n", type: 9, nested(GGUFValue.maxArrayDepth)))
        var value = try #require(try openGGUF(ok.bytes)["n"])
        for _ in 0..<GGUFValue.maxArrayDepth { value = try #require(value.array?.first) }
        #expect(value == .uint8(7))
        var bad = C(); bad.kvs.append(C.kv("n", type: 9, nested(GGUFValue.maxArrayDepth + 1)))
        #expect(throws: FormatError.nestedArray(key: "n")) { try openGGUF(bad.bytes) }
    }

    @Test func alignmentRules() throws {
        for (body, type) in [(C.le(UInt64(32)), UInt32(10)), (C.le(Int32(32)), 5)] {
            var c = C(); c.kvs.append(C.kv("general.alignment", type: type, body))
            #expect { try openGGUF(c.bytes) } throws: { e in
                if case .badAlignment = e as? FormatError { return true } else { return false }
            }
        }
        for a: UInt32 in [0, 48, 3] {
            var c = C(); c.kvs.append(C.kv("general.alignment", type: 4, C.le(a)))
            #expect(throws: FormatError.badAlignment("\(a) is not a non-zero power of two")) { try openGGUF(c.bytes) }
        }
        var c = C(); c.kvs.append(C.kv("general.alignment", type: 4, C.le(UInt32(8)))); c.alignment = 8
        let f = try openGGUF(c.bytes)
        #expect(f.alignment == 8 && f.dataOffset % 8 == 0 && f.dataOffset % 32 != 0)
    }

    @Test func tensorNameLength() throws {
        let n63 = String(repeating: "x", count: 63), n64 = String(repeating: "x", count: 64)
        var c = C(); c.infos = [C.info(n63, ne: [4], type: 0, offset: 0)]
        #expect(try openGGUF(c.bytes).tensors[0].name == n63)
        c.infos = [C.info(n64, ne: [4], type: 0, offset: 0)]
        #expect(throws: FormatError.tensorNameTooLong(n64)) { try openGGUF(c.bytes) }
    }

    @Test func duplicateTensorName() {
        var c = C(); c.infos.append(C.info("t", ne: [4], type: 0, offset: 32)); c.dataBytes = 48
        #expect(throws: FormatError.duplicateTensor("t")) { try openGGUF(c.bytes) }
    }

    @Test func tooManyDimensions() {
        var c = C(); c.infos = [C.info("t", ne: [4, 1, 1, 1, 1], type: 0, offset: 0)]
        #expect(throws: FormatError.tooManyDimensions(tensor: "t", count: 5)) { try openGGUF(c.bytes) }
    }

    @Test func negativeDimension() {
        var c = C(); c.infos = [C.info("t", ne: [4, -1], type: 0, offset: 0)]
        #expect(throws: FormatError.negativeDimension(tensor: "t")) { try openGGUF(c.bytes) }
    }

    @Test func elementCountOverflow() {
        var c = C(); c.infos = [C.info("t", ne: [1 << 32, 1 << 32], type: 0, offset: 0)]
        #expect(throws: FormatError.elementCountOverflow(tensor: "t")) { try openGGUF(c.bytes) }
        // The element count fits but its f32 byte size does not.
        c.infos = [C.info("t", ne: [1 << 62], type: 0, offset: 0)]
        #expect(throws: FormatError.elementCountOverflow(tensor: "t")) { try openGGUF(c.bytes) }
    }

    @Test func unknownTensorType() {
        for type: UInt32 in [4, 31, 43, 0xFFFF_FFFF] {
            var c = C(); c.infos = [C.info("t", ne: [4], type: type, offset: 0)]
            #expect(throws: FormatError.unknownTensorType(tensor: "t", type: type)) { try openGGUF(c.bytes) }
        }
    }

    @Test func rowNotBlockAligned() {
        var c = C(); c.infos = [C.info("q", ne: [16, 2], type: 2, offset: 0)]  // Q4_0: 32 per block
        #expect(throws: FormatError.rowNotBlockAligned(tensor: "q", ne0: 16, blockSize: 32)) { try openGGUF(c.bytes) }
    }

    @Test func strictDataLayout() {
        var c = C(); c.infos = [C.info("t", ne: [4], type: 0, offset: 32)]; c.dataBytes = 48
        #expect(throws: FormatError.badTensorOffset(tensor: "t", offset: 32, expected: 0)) { try openGGUF(c.bytes) }
        // Second tensor must start at alignUp(16, 32) = 32, not right after the first one's 16 bytes.
        c.infos = [C.info("t", ne: [4], type: 0, offset: 0), C.info("u", ne: [4], type: 0, offset: 16)]
        #expect(throws: FormatError.badTensorOffset(tensor: "u", offset: 16, expected: 32)) { try openGGUF(c.bytes) }
        c.infos[1] = C.info("u", ne: [4], type: 0, offset: 32)
        #expect((try? openGGUF(c.bytes))?.tensors.map(\.offset) == [0, 32])
    }

    @Test func tensorDataOutOfBounds() {
        var c = C(); c.dataBytes = 15
        #expect(throws: FormatError.tensorDataOutOfBounds(tensor: "t")) { try openGGUF(c.bytes) }
        c.infos = [C.info("huge", ne: [1 << 40], type: 0, offset: 0)]
        #expect(throws: FormatError.tensorDataOutOfBounds(tensor: "huge")) { try openGGUF(c.bytes) }
    }

    /// Cutting a valid file anywhere before the end of its last tensor's data must throw (never crash);
    /// only the last tensor's trailing padding may be missing.
    @Test func truncationAtEveryLength() throws {
        var w = GGUFWriter(metadata: [("general.architecture", .text("llama")), ("a", .array(.int16, [.int16(-1), .int16(2)])),
                                      ("n", .array(.array, [.strings(["x", "yz"])])), ("f", .float64(0.5)), ("b", .bool(true))])
        let q = [UInt8](repeating: 3, count: 68)  // 2 Q8_0 blocks
        try q.withUnsafeBytes { qraw in
            w.addTensor(name: "q", ne: [64], dtype: .q8_0, source: .bytes(qraw))
            w.addTensor(name: "h", ne: [3], dtype: .f16, source: .fill { $0.storeBytes(of: 0x3C00, as: UInt16.self) })
            let full = try w.serialized()
            let whole = try openGGUF(full)
            let end = whole.dataOffset + whole.tensors[1].offset + whole.tensors[1].byteCount
            #expect(end == full.count - 26)
            var thrown = 0
            for n in 0..<full.count {
                do {
                    _ = try openGGUF(Array(full[0..<n]))
                    #expect(n >= end, "accepted a file cut at \(n) of \(full.count) bytes")
                } catch is FormatError {
                    thrown += 1
                    #expect(n < end)
                }
            }
            #expect(thrown == end)
        }
    }

    /// Seeded random byte corruption of a valid file: every outcome is a parsed file or a FormatError.
    @Test func randomCorruptionNeverCrashes() throws {
        let base = Array(try Data(contentsOf: URL(fileURLWithPath: TestPaths.fixture("FormatsTests", "gguf/every_type.gguf"))))
        var rng = SplitMix64(seed: 42)
        var parsed = 0, rejected = 0
        for _ in 0..<300 {
            var b = base
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                let i = Int.random(in: 0..<1600, using: &rng)  // the header part
                b[i] = UInt8.random(in: 0...255, using: &rng)
            }
            do { _ = try openGGUF(b); parsed += 1 } catch is FormatError { rejected += 1 }
        }
        print("corruption: \(parsed) parsed, \(rejected) rejected")
        #expect(parsed + rejected == 300 && rejected > 0)
    }
}
