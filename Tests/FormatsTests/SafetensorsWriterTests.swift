import Foundation
import Testing
import TestSupport
@testable import Formats

@Suite struct SafetensorsWriterTests {
    static let allDTypes = DType.allCases.filter { $0.safetensorsName != nil }

    /// A shape that fills whole bytes for every dtype (2·3 elements; 4 for the 6-bit types).
    static func shape(for dtype: DType) -> [Int] { dtype.bits == 6 ? [4] : [2, 3] }

    static func pattern(_ count: Int, seed: Int) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ seed &* 11 &+ 1) }
    }

    @Test func roundTripEveryDType() throws {
        let dir = try TestPaths.scratch("st-roundtrip")
        defer { try? FileManager.default.removeItem(at: dir) }
        let dtypes = Self.allDTypes
        #expect(dtypes.count == 22)
        let payloads = dtypes.enumerated().map { i, t in
            Self.pattern(t.byteCount(elements: Self.shape(for: t).reduce(1, *))!, seed: i)
        }
        let path = dir.appendingPathComponent("all.safetensors").path
        // Stable buffers for the `.bytes` views (never escape a pointer out of `withUnsafeBytes`).
        let buffers = payloads.map { p in
            let b = UnsafeMutableRawBufferPointer.allocate(byteCount: max(p.count, 1), alignment: 16)
            b.copyBytes(from: p)
            return UnsafeRawBufferPointer(rebasing: b[0..<p.count])
        }
        defer { buffers.forEach { UnsafeMutableRawBufferPointer(mutating: $0).deallocate() } }
        var entries: [SafetensorsWriter.Entry] = []
        for (i, t) in dtypes.enumerated() {
            // Half from memory, half produced on demand.
            let source: SafetensorsWriter.Source = i % 2 == 0
                ? .bytes(buffers[i])
                : .fill { buffer in buffer.copyMemory(from: buffers[i]) }
            entries.append(.init(name: "t.\(t.safetensorsName!.lowercased())", dtype: t, shape: Self.shape(for: t), source: source))
        }
        try SafetensorsWriter.write(entries, metadata: ["format": "pt"], to: path)

        let st = try SafetensorsFile(path: path)
        #expect(st.metadata == ["format": "pt"])
        #expect(st.tensors.count == dtypes.count)
        #expect(st.dataStart % 8 == 0)
        for (i, t) in dtypes.enumerated() {
            let tensor = try #require(st.tensor(named: "t.\(t.safetensorsName!.lowercased())"))
            #expect(tensor.dtype == t)
            #expect(tensor.shape == Self.shape(for: t))
            #expect(Array(st.data(tensor)) == payloads[i], "\(t)")
            // Descending-alignment order makes every multi-byte tensor naturally aligned in the file.
            if let bits = t.bits, bits >= 8 { #expect(tensor.fileRange.lowerBound % (bits / 8) == 0, "\(t)") }
        }
        // Storage order: descending alignment rank, then name.
        let ranks = st.tensors.map(\.dtype.safetensorsAlignmentRank)
        #expect(ranks == ranks.sorted(by: >))
    }

    @Test func outputIsDeterministicAndIndependentOfInputOrder() throws {
        let a: [UInt8] = Array(0..<16), b: [UInt8] = [9, 8, 7], c: [UInt8] = [1, 2, 3, 4]
        try a.withUnsafeBytes { a in
            try b.withUnsafeBytes { b in
                try c.withUnsafeBytes { c in
                    let entries: [SafetensorsWriter.Entry] = [
                        .init(name: "z", dtype: .u8, shape: [3], source: .bytes(b)),
                        .init(name: "y", dtype: .f32, shape: [2, 2], source: .bytes(a)),
                        .init(name: "x", dtype: .u8, shape: [4], source: .bytes(c)),
                        .init(name: "w", dtype: .f64, shape: [0], source: .bytes(UnsafeRawBufferPointer(start: nil, count: 0))),
                    ]
                    let metadata = ["b": "2", "a": "1\n\"q\"", "c": "é"]
                    let h1 = try SafetensorsWriter.header(for: entries, metadata: metadata)
                    let h2 = try SafetensorsWriter.header(for: entries.reversed(), metadata: metadata)
                    #expect(h1.bytes == h2.bytes)
                    #expect(h1.bytes.count % 8 == 0)
                    #expect(h1.order == [3, 1, 2, 0])
                    #expect(h1.offsets == [20..<23, 0..<16, 16..<20, 0..<0])
                    let json = String(decoding: h1.bytes[8...], as: UTF8.self)
                    let expected = #"{"__metadata__":{"a":"1\n\"q\"","b":"2","c":"é"},"w":{"dtype":"F64","shape":[0],"data_offsets":[0,0]},"#
                        + #""y":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"x":{"dtype":"U8","shape":[4],"data_offsets":[16,20]},"#
                        + #""z":{"dtype":"U8","shape":[3],"data_offsets":[20,23]}}"#
                    #expect(json.trimmingCharacters(in: .whitespaces) == expected)
                }
            }
        }
    }

    @Test func writerRejectsWhatTheReaderWouldReject() throws {
        let one: [UInt8] = [0]
        try one.withUnsafeBytes { raw in
            func header(_ entries: [SafetensorsWriter.Entry]) throws { _ = try SafetensorsWriter.header(for: entries, metadata: [:]) }
            #expect(throws: FormatError.misalignedSlice(tensor: "f4")) {
                try header([.init(name: "f4", dtype: .f4, shape: [3], source: .bytes(raw))])
            }
            #expect(throws: FormatError.duplicateTensor("a")) {
                try header([.init(name: "a", dtype: .u8, shape: [1], source: .bytes(raw)),
                            .init(name: "a", dtype: .i8, shape: [1], source: .bytes(raw))])
            }
            #expect(throws: FormatError.unsupportedDType("Q4_1", operation: "safetensors")) {
                try header([.init(name: "q", dtype: .q4_1, shape: [32], source: .bytes(raw))])
            }
            #expect(throws: FormatError.validationOverflow(tensor: "huge")) {
                try header([.init(name: "huge", dtype: .f32, shape: [1 << 40, 1 << 40], source: .bytes(raw))])
            }
            #expect(throws: FormatError.self) {
                try header([.init(name: "__metadata__", dtype: .u8, shape: [1], source: .bytes(raw))])
            }
            let dir = try TestPaths.scratch("st-reject")
            defer { try? FileManager.default.removeItem(at: dir) }
            let path = dir.appendingPathComponent("x.safetensors").path
            #expect(throws: FormatError.tensorInvalidInfo(tensor: "a", expectedBytes: 4, foundBytes: 1)) {
                try SafetensorsWriter.write([.init(name: "a", dtype: .f32, shape: [1], source: .bytes(raw))], to: path)
            }
            #expect(!FileManager.default.fileExists(atPath: path))
        }
    }

    /// A `.fill` that throws halfway leaves no file and no temp file, and an existing file is untouched.
    @Test func failedWriteLeavesNothingBehind() throws {
        struct Boom: Error {}
        let dir = try TestPaths.scratch("st-atomic")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("model.safetensors").path
        let entries: [SafetensorsWriter.Entry] = [
            .init(name: "ok", dtype: .f32, shape: [1024], source: .fill { $0.storeBytes(of: 1, as: UInt8.self) }),
            .init(name: "bad", dtype: .u8, shape: [8], source: .fill { _ in throw Boom() }),
        ]
        #expect(throws: Boom.self) { try SafetensorsWriter.write(entries, to: path) }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).isEmpty)

        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: path))
        #expect(throws: FormatError.outputExists(path: path)) { try SafetensorsWriter.write(entries, to: path) }
        #expect(throws: Boom.self) { try SafetensorsWriter.write(entries, to: path, overwrite: true) }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["model.safetensors"])
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == Data([1, 2, 3]))

        // The same entries without the failing one replace the file.
        try SafetensorsWriter.write([entries[0]], to: path, overwrite: true)
        let st = try SafetensorsFile(path: path)
        #expect(st.data(st.tensors[0]).prefix(2).elementsEqual([1, 0]))
        #expect(st.tensors[0].byteCount == 4096)
    }
}
