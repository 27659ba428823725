import Foundation
import Formats
import Testing
import TestSupport
@testable import Patch

/// Committed .wpatch files: a format-stability check (today's decoder reads yesterday's bytes to the
/// same patch and id) and the fuzzer's seed corpus. Regenerate with WILKE_REGENERATE_FIXTURES=1.
@Suite("committed patch fixtures")
struct PatchFixtureTests {
    static let regenerate = ProcessInfo.processInfo.environment["WILKE_REGENERATE_FIXTURES"] == "1"

    @Test func committedPatchDecodesToTheSamePatch() throws {
        let p = try Samples.patch()
        let path = TestPaths.fixture("PatchTests", "sample.wpatch")
        let contentPath = TestPaths.fixture("PatchTests", "sample-content.bin")
        if Self.regenerate {
            let bytes = try p.encode()
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            // Fuzzer seed for the content mode: one mode byte, then the decompressed content.
            let content = try Array(bytes.dropFirst(PatchFormat.preambleSize)).withUnsafeBytes { try Zstd.decompress($0, maxSize: 1 << 24) }
            try Data([0] + content).write(to: URL(fileURLWithPath: contentPath))
        }
        let committed = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        let q = try Patch.decode(committed)
        #expect(q == p)
        #expect(q.id == p.id)
        let seed = try [UInt8](Data(contentsOf: URL(fileURLWithPath: contentPath)))
        #expect(try seed.withUnsafeBytes { try Patch.decode(content: UnsafeRawBufferPointer(rebasing: $0.dropFirst())) } == p)
        // The committed bytes revert and apply on the regenerated model.
        let m = Samples.model()
        #expect(try q.revert(from: try q.apply(to: m)) == m)
    }
}
