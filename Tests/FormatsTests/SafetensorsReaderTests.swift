import Foundation
import Testing
import TestSupport
@testable import Formats

/// One crafted file per validation rule of FORMATS.md §1.4, each failing with its own error, plus the
/// edge cases of §1.5 and §1.6.
@Suite struct SafetensorsReaderTests {
    let f32x2 = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#

    @Test func validFileOpens() throws {
        let st = try openSafetensors(craftSafetensors(f32x2, data: 8))
        #expect(st.tensors == [SafetensorsTensor(name: "a", dtype: .f32, shape: [2], dataOffsets: 0..<8,
                                                 fileRange: (8 + f32x2.utf8.count)..<(16 + f32x2.utf8.count))])
        #expect(st.headerLength == f32x2.utf8.count)
        #expect(st.dataStart == 8 + f32x2.utf8.count)
        #expect(st.metadata.isEmpty)
        #expect(Array(st.data(st.tensor(named: "a")!)) == Array(0..<8))
        #expect(st.tensor(named: "b") == nil)
        #expect(throws: FormatError.tensorNotFound("b")) { try st.data(named: "b") }
    }

    @Test func rule1HeaderTooSmall() {
        #expect(throws: FormatError.headerTooSmall(length: 7)) { try openSafetensors([1, 2, 3, 4, 5, 6, 7]) }
    }

    @Test func rule2HeaderTooLarge() {
        #expect(throws: FormatError.headerTooLarge(length: 100_000_001)) {
            try openSafetensors(craftSafetensors("{}", length: 100_000_001))
        }
        #expect(throws: FormatError.headerTooLarge(length: UInt64.max)) {
            try openSafetensors(craftSafetensors("{}", length: UInt64.max))
        }
        // The limit itself is allowed by rule 2 and then fails rule 3 on this small file.
        #expect(throws: FormatError.invalidHeaderLength(length: 100_000_000, fileLength: 10)) {
            try openSafetensors(craftSafetensors("{}", length: 100_000_000))
        }
    }

    @Test func rule3InvalidHeaderLength() {
        let bytes = craftSafetensors(f32x2, length: UInt64(f32x2.utf8.count + 1))
        #expect(throws: FormatError.invalidHeaderLength(length: UInt64(f32x2.utf8.count + 1), fileLength: bytes.count)) {
            try openSafetensors(bytes)
        }
    }

    @Test func rule4InvalidHeaderUTF8() {
        var bytes = craftSafetensors(#"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}"#, data: 1)
        bytes[10] = 0xFF  // inside the name "a"
        #expect(throws: FormatError.invalidHeaderUTF8) { try openSafetensors(bytes) }
    }

    @Test func rule5InvalidHeaderJSON() throws {
        let cases: [(String, Int)] = [
            (f32x2 + "\0\0", 8),                                                    // NUL padding
            (#"{"__metadata__":{"n":1},"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}"#, 1),
            (#"{"__metadata__":{"n":{"x":"y"}}}"#, 0),                              // nested metadata
            (#"[]"#, 0),                                                             // not an object
            (#"{"a":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}}"#, 8),       // float dimension
            (#"{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}"#, 8),        // negative dimension
            (#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8,8]}}"#, 8),       // 3 offsets
            (#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0]}}"#, 8),           // 1 offset
            (#"{"a":{"dtype":"F32","data_offsets":[0,8]}}"#, 8),                     // missing shape
            (#"{"a":{"dtype":"F32","shape":[2],"shape":[2],"data_offsets":[0,8]}}"#, 8),
            (#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},}"#, 8),        // trailing comma
            (#"{"a":{"dtype":"F32","shape":[02],"data_offsets":[0,8]}}"#, 8),        // leading zero
            (#"{"a":{"dtype":"F32","shape":[18446744073709551616],"data_offsets":[0,8]}}"#, 8),
            (#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}"#, 8),          // unterminated
            ("{\"a\u{1}\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1), // raw control char
            (#"{"\ud800":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}"#, 1),     // lone surrogate
            (#"{"__metadata__":{},"__metadata__":{}}"#, 0),
            (#"{"__metadata__":{"k":"1","k":"2"}}"#, 0),
        ]
        for (json, data) in cases {
            let message = headerJSONError(craftSafetensors(json, data: data))
            #expect(message != nil, "\(json)")
        }
        #expect(headerJSONError(craftSafetensors(f32x2 + "\0", data: 8))?.hasPrefix("trailing characters") == true)
    }

    @Test func rule5UnknownDType() {
        #expect(throws: FormatError.unknownDType("Q4")) {
            try openSafetensors(craftSafetensors(#"{"a":{"dtype":"Q4","shape":[2],"data_offsets":[0,1]}}"#, data: 1))
        }
        // Case-sensitive, as serde's variant names are.
        #expect(throws: FormatError.unknownDType("f32")) {
            try openSafetensors(craftSafetensors(#"{"a":{"dtype":"f32","shape":[1],"data_offsets":[0,4]}}"#, data: 4))
        }
    }

    @Test func rule6InvalidOffset() {
        let holeAtStart = #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#
        #expect(throws: FormatError.invalidOffset(tensor: "a")) { try openSafetensors(craftSafetensors(holeAtStart, data: 8)) }
        let overlap = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#
        #expect(throws: FormatError.invalidOffset(tensor: "b")) { try openSafetensors(craftSafetensors(overlap, data: 8)) }
        let gap = #"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"b":{"dtype":"U8","shape":[1],"data_offsets":[2,3]}}"#
        #expect(throws: FormatError.invalidOffset(tensor: "b")) { try openSafetensors(craftSafetensors(gap, data: 3)) }
        let backwards = #"{"a":{"dtype":"U8","shape":[0],"data_offsets":[0,0]},"b":{"dtype":"U8","shape":[0],"data_offsets":[0,18446744073709551615]}}"#
        #expect(throws: FormatError.tensorInvalidInfo(tensor: "b", expectedBytes: 0, foundBytes: Int.max)) {
            try openSafetensors(craftSafetensors(backwards, data: 0))
        }
        let endBeforeBegin = #"{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"c":{"dtype":"U8","shape":[0],"data_offsets":[4,2]}}"#
        #expect(throws: FormatError.invalidOffset(tensor: "c")) { try openSafetensors(craftSafetensors(endBeforeBegin, data: 4)) }
    }

    @Test func rule7ValidationOverflow() {
        let elements = #"{"a":{"dtype":"U8","shape":[4294967296,4294967296,2],"data_offsets":[0,1]}}"#
        #expect(throws: FormatError.validationOverflow(tensor: "a")) { try openSafetensors(craftSafetensors(elements, data: 1)) }
        let bits = #"{"a":{"dtype":"F32","shape":[1152921504606846976],"data_offsets":[0,1]}}"#  // 2^60 × 32 bits
        #expect(throws: FormatError.validationOverflow(tensor: "a")) { try openSafetensors(craftSafetensors(bits, data: 1)) }
    }

    @Test func rule8MisalignedSlice() {
        let f4 = #"{"a":{"dtype":"F4","shape":[3],"data_offsets":[0,2]}}"#
        #expect(throws: FormatError.misalignedSlice(tensor: "a")) { try openSafetensors(craftSafetensors(f4, data: 2)) }
        let f6 = #"{"a":{"dtype":"F6_E2M3","shape":[2,1],"data_offsets":[0,2]}}"#
        #expect(throws: FormatError.misalignedSlice(tensor: "a")) { try openSafetensors(craftSafetensors(f6, data: 2)) }
    }

    @Test func rule9TensorInvalidInfo() {
        let json = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#
        #expect(throws: FormatError.tensorInvalidInfo(tensor: "a", expectedBytes: 8, foundBytes: 4)) {
            try openSafetensors(craftSafetensors(json, data: 4))
        }
    }

    @Test func rule10MetadataIncompleteBuffer() {
        #expect(throws: FormatError.metadataIncompleteBuffer(expected: 8, found: 9)) {
            try openSafetensors(craftSafetensors(f32x2, data: 9))  // a trailing byte
        }
        #expect(throws: FormatError.metadataIncompleteBuffer(expected: 8, found: 4)) {
            try openSafetensors(craftSafetensors(f32x2, data: 4))  // missing bytes
        }
        #expect(throws: FormatError.metadataIncompleteBuffer(expected: 0, found: 3)) {
            try openSafetensors(craftSafetensors("{}", data: 3))
        }
    }

    /// The Rust reader keeps the last of two identical entries; we refuse (FORMATS.md §1.6).
    @Test func duplicateTensorNamesAreRejected() {
        let same = #"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}"#
        #expect(throws: FormatError.duplicateTensor("a")) { try openSafetensors(craftSafetensors(same, data: 1)) }
        // Escapes are decoded before comparing: "\u0061" is "a".
        let escaped = #"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"\u0061":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}"#
        #expect(throws: FormatError.duplicateTensor("a")) { try openSafetensors(craftSafetensors(escaped, data: 2)) }
    }

    @Test func lenientWhereRustIsLenient() throws {
        // Leading and trailing whitespace, extra fields, entries out of order, null metadata.
        let json = " \n\t{\"__metadata__\":null, \"b\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[4,6],\"extra\":[1.5e3,{\"x\":null}]},"
            + "\"a\":{\"data_offsets\":[0,4],\"shape\":[],\"dtype\":\"I32\"}}   \r\n"
        let st = try openSafetensors(craftSafetensors(json, data: 6))
        #expect(st.names == ["a", "b"])
        #expect(st.tensor(named: "a")?.shape == [])
        #expect(st.tensor(named: "a")?.elementCount == 1)
        #expect(st.metadata.isEmpty)
        #expect(Array(st.data(st.tensor(named: "b")!)) == [4, 5])
    }

    @Test func emptyTensorsScalarsAndMetadata() throws {
        let json = #"{"__metadata__":{"format":"pt","note":"caf\u00e9 \ud83d\ude00"},"e1":{"dtype":"F16","shape":[0,5],"data_offsets":[0,0]},"#
            + #""e2":{"dtype":"BF16","shape":[3,0],"data_offsets":[0,0]},"s":{"dtype":"F64","shape":[],"data_offsets":[0,8]}}"#
        let st = try openSafetensors(craftSafetensors(json, data: 8))
        #expect(st.metadata == ["format": "pt", "note": "café 😀"])
        #expect(st.names == ["e1", "e2", "s"])
        #expect(st.tensor(named: "e2")!.byteCount == 0)
        #expect(st.data(st.tensor(named: "e1")!).count == 0)
        #expect(st.tensor(named: "s")!.fileRange == (8 + json.utf8.count)..<(16 + json.utf8.count))
    }

    /// Data is not assumed aligned: an F32 right after one U8 byte sits at an odd address.
    @Test func unalignedTensorsAreReadable() throws {
        let json = #"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"b":{"dtype":"F32","shape":[1],"data_offsets":[1,5]}}"#
        var bytes = craftSafetensors(json, data: 1)
        withUnsafeBytes(of: Float(1.5).bitPattern.littleEndian) { bytes += $0 }
        let st = try openSafetensors(bytes)
        let data = st.data(st.tensor(named: "b")!)
        #expect(data.count == 4)
        #expect(Float(bitPattern: UInt32(littleEndian: data.loadUnaligned(as: UInt32.self))) == 1.5)
    }

    /// Opening reads only the header: a 4 GiB sparse file opens as fast as a tiny one.
    @Test func openingDoesNotTouchTensorData() throws {
        let size = 1 << 32
        let json = #"{"big":{"dtype":"U8","shape":[\#(size)],"data_offsets":[0,\#(size)]}}"#
        let path = NSTemporaryDirectory() + "wilke-st-sparse-\(UUID().uuidString).safetensors"
        _ = FileManager.default.createFile(atPath: path, contents: Data(craftSafetensors(json)))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.truncate(atOffset: UInt64(8 + json.utf8.count + size))
        try handle.close()
        let start = Date()
        let st = try SafetensorsFile(path: path)
        let elapsed = Date().timeIntervalSince(start)
        print("opened a \(st.file.count)-byte file in \(elapsed * 1000) ms")
        #expect(st.tensor(named: "big")?.byteCount == size)
        #expect(elapsed < 0.5)
    }
}
