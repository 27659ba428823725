import Testing
@testable import Formats

@Suite struct ByteReaderTests {
    @Test func readsLittleEndianAndRefusesPastTheEnd() throws {
        let bytes: [UInt8] = [0x01, 0x02, 0x03, 0x04, 0x05]
        try bytes.withUnsafeBytes { (raw) throws in
            var r = ByteReader(raw)
            #expect(try r.read(UInt32.self) == 0x0403_0201)
            #expect(throws: FormatError.truncated(offset: 4, needed: 2, available: 1)) { try r.read(UInt16.self) }
            #expect(r.offset == 4)
            #expect(try r.read(UInt8.self) == 5)
        }
    }

    @Test func lengthLargerThanTheBufferIsTruncation() throws {
        var w = ByteWriter()
        w.write(UInt64.max)
        try w.bytes.withUnsafeBytes { (raw) throws in
            var r = ByteReader(raw)
            #expect(throws: FormatError.self) { try r.readLength() }
            #expect(r.offset == 0)
        }
    }

    @Test func dtypeSizes() {
        #expect(DType.q4_1.byteCount(elements: 64) == 40)
        #expect(DType.q4_1.byteCount(elements: 33) == nil)
        #expect(DType.f4.byteCount(elements: 3) == nil)
        #expect(DType.bf16.byteCount(elements: 3) == 6)
        #expect(DType(ggmlType: 3) == .q4_1)
        #expect(DType(safetensorsName: "F8_E4M3") == .f8e4m3)
        #expect(DType.i64.byteCount(elements: Int.max / 4) == nil)
    }
}
