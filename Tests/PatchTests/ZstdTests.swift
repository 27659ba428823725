import Testing
@testable import Patch

@Suite struct ZstdTests {
    @Test func roundTripAndCorruption() throws {
        let input = (0..<10_000).map { UInt8(truncatingIfNeeded: $0 * 7 / 3) }
        let frame = try input.withUnsafeBytes { try Zstd.compress($0) }
        #expect(frame.count < input.count)
        let back = try frame.withUnsafeBytes { try Zstd.decompress($0, maxSize: 1 << 20) }
        #expect(back == input)
        // A flipped payload byte is caught by the content checksum (or the entropy decoder).
        var bad = frame
        bad[bad.count / 2] ^= 0x40
        #expect(throws: PatchError.self) { try bad.withUnsafeBytes { try Zstd.decompress($0, maxSize: 1 << 20) } }
        // A size limit below the content size refuses before allocating.
        #expect(throws: PatchError.self) { try frame.withUnsafeBytes { try Zstd.decompress($0, maxSize: 100) } }
        // Trailing bytes are refused.
        let trailing = frame + [0]
        #expect(throws: PatchError.self) { try trailing.withUnsafeBytes { try Zstd.decompress($0, maxSize: 1 << 20) } }
    }

    /// PATCH_FORMAT §1 requires the content checksum: the same frame with the checksum flag cleared and
    /// its 4 checksum bytes dropped is a valid zstd frame, and is refused.
    @Test func frameWithoutChecksumRefused() throws {
        let input = [UInt8](repeating: 7, count: 1000)
        var frame = try input.withUnsafeBytes { try Zstd.compress($0) }
        #expect(frame[4] & 0x04 != 0)
        frame[4] &= ~0x04
        frame.removeLast(4)
        #expect(throws: PatchError.zstd("frame has no content checksum (the format requires one)")) {
            try frame.withUnsafeBytes { try Zstd.decompress($0, maxSize: 1 << 20) }
        }
    }
}
