import Foundation
import Formats
import Testing
@testable import Patch

/// Truncated, bit-flipped, foreign and internally inconsistent bytes: always a PatchError, never a trap.
@Suite("corrupt and foreign patch bytes")
struct PatchCorruptionTests {
    /// Decoding must throw a PatchError, or (for harmless changes such as the minor version) give back
    /// the original patch.
    func expectRejectedOrSame(_ bytes: [UInt8], _ original: Patch, _ label: String) {
        do {
            let p = try Patch.decode(bytes)
            #expect(p == original, "\(label) decoded to a different patch")
        } catch is PatchError {
        } catch {
            Issue.record("\(label): \(error) is not a PatchError")
        }
    }

    @Test func everyTruncationIsRejected() throws {
        let p = try Samples.patch()
        let bytes = try p.encode()
        for n in 0..<bytes.count {
            #expect(throws: PatchError.self, "prefix \(n)") { try Patch.decode(Array(bytes.prefix(n))) }
        }
    }

    @Test func everyBitFlipIsRejected() throws {
        let p = try Samples.patch()
        let bytes = try p.encode()
        var accepted = 0
        for pos in 0..<bytes.count {
            var bad = bytes
            bad[pos] ^= UInt8(1) << (pos % 8)
            if (try? Patch.decode(bad)) != nil { accepted += 1 }
            expectRejectedOrSame(bad, p, "flip at \(pos)")
        }
        // Accepted flips are the minor version (10, 11) and bits zstd's decoder never reads (table
        // padding); the content checksum proves those decode to the identical patch.
        print("bit flips that decode to the identical patch: \(accepted) of \(bytes.count)")
        #expect(accepted < bytes.count / 100)
    }

    @Test func foreignBytesAreRejected() throws {
        var rng = SeededRNG(seed: 3)
        let random = (0..<4096).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let json = Array(#"{"id":"x"}"#.utf8)
        let cases: [(String, [UInt8])] = [
            ("empty", []),
            ("gguf", Array("GGUF".utf8) + [3, 0, 0, 0] + [UInt8](repeating: 0, count: 16)),
            ("safetensors", [8, 0, 0, 0, 0, 0, 0, 0] + Array("{}      ".utf8)),
            ("random", random),
            ("magic only", PatchFormat.magic),
            ("magic and version", PatchFormat.magic + [1, 0, 0, 0]),
            ("bare zstd frame", try json.withUnsafeBytes { try Zstd.compress($0) }),
            ("garbage frame", PatchFormat.magic + [1, 0, 0, 0] + random),
            ("major version 2", try Samples.wrap(Samples.content(manifest: json, binary: []), major: 2)),
            ("trailing bytes", try Samples.patch().encode() + [0]),
            ("two frames", try Samples.patch().encode() + Array(try Samples.patch().encode().dropFirst(12))),
        ]
        for (label, bytes) in cases {
            #expect(throws: PatchError.self, "\(label)") { try Patch.decode(bytes) }
        }
        #expect(throws: PatchError.unsupportedVersion(major: 2, minor: 0)) { try Patch.decode(cases[8].1) }
        #expect(throws: PatchError.notAPatch) { try Patch.decode(random) }
    }

    @Test func inconsistentManifestsAreRejected() throws {
        let p = try Samples.patch()
        let (m, binary) = p.manifestWithoutID()
        let json = JSONValue.object(m).canonicalBytes()
        func step0(_ edit: @escaping (inout [String: JSONValue]) -> Void) -> (inout [String: JSONValue]) -> Void {
            return { top in
                guard case var .array(steps) = top["steps"]!, case var .object(s) = steps[0] else { return }
                edit(&s)
                steps[0] = .object(s)
                top["steps"] = .array(steps)
            }
        }
        var withSpace = json
        withSpace.insert(0x20, at: 1)
        let cases: [(String, [UInt8], (PatchError) -> Bool)] = [
            ("non-canonical", try Samples.wrap(Samples.content(manifest: withSpace, binary: binary)), { $0 == .nonCanonicalManifest }),
            ("no id", try Samples.wrap(Samples.content(manifest: json, binary: binary)), { if case .invalidManifest = $0 { true } else { false } }),
            ("wrong id", try Samples.tampered(p) { $0["metadata"] = .object([:]) }.withWrongID(), { if case .idMismatch = $0 { true } else { false } }),
            ("manifest longer than content", try Samples.wrap([255, 255, 0, 0, 0, 0, 0, 0] + json), { $0 == .truncated(what: "manifest") }),
            ("rank too high", try Samples.tampered(p, step0 { $0["rank"] = .int(3) }), { if case .sectionSizeMismatch = $0 { true } else { false } }),
            // Rank 0 is a valid residue-only step; with the factors still in the binary area the sizes disagree.
            ("rank zero", try Samples.tampered(p, step0 { $0["rank"] = .int(0) }), { if case .sectionSizeMismatch = $0 { true } else { false } }),
            ("rank too high for the format", try Samples.tampered(p, step0 { $0["rank"] = .int(4097) }), { if case .invalidManifest = $0 { true } else { false } }),
            ("empty forward residue", try Samples.tampered(p, step0 { $0["forward_residue"] = .object(["kind": .string("xor"), "count": .int(0), "bytes": .int(0)]) }),
             { if case .invalidManifest = $0 { true } else { false } }),
            ("huge shape", try Samples.tampered(p, step0 { $0["shape"] = .array([.int(1 << 31), .int(1 << 31)]) }), { _ in true }),
            ("negative size", try Samples.tampered(p, step0 { $0["shape"] = .array([.int(-16), .int(48)]) }), { _ in true }),
            ("residue bytes beyond", try Samples.tampered(p, step0 { $0["residue"] = .object(["kind": .string("xor"), "count": .int(1), "bytes": .int(1 << 30)]) }), { _ in true }),
            ("residue kind", try Samples.tampered(p, step0 { $0["residue"] = .object(["kind": .string("blocks"), "count": .int(0), "bytes": .int(0)]) }), { _ in true }),
            ("base sha", try Samples.tampered(p, step0 { $0["base_sha256"] = .string(String(repeating: "0", count: 64)) }), { if case .brokenChain = $0 { true } else { false } }),
            ("float promotion", try Samples.tampered(p, step0 { $0["result_dtype"] = .string("F32") }), { _ in true }),
            ("unknown dtype", try Samples.tampered(p, step0 { $0["dtype"] = .string("Q9_9") }), { _ in true }),
            ("unsupported dtype", try Samples.tampered(p, step0 { $0["dtype"] = .string("IQ2_XXS") }), { _ in true }),
            ("nan scale", try Samples.tampered(p, step0 { $0["scale"] = .string("nan") }), { _ in true }),
            ("bad permutation", try Samples.tampered(p, step0 { $0["layout"] = .object(["order": .string("row_major"),
                "row_permutation": .object(["kind": .string("llama_rope"), "heads": .int(5)])]) }), { _ in true }),
            ("overflowing permutation", try Samples.tampered(p, step0 { $0["layout"] = .object(["order": .string("row_major"),
                "row_permutation": .object(["kind": .string("llama_rope"), "heads": .int(Int64.max)])]) }),
             { if case .invalidManifest = $0 { true } else { false } }),
            // No checkpoint stores a permuted Wᵀ: StorageLayout has no such layout, the reader refuses it.
            ("transposed permutation", try Samples.tampered(p, step0 { $0["layout"] = .object(["order": .string("transposed"),
                "row_permutation": .object(["kind": .string("llama_rope"), "heads": .int(2)])]) }),
             { $0 == .invalidManifest("a transposed layout with a row permutation") }),
            ("untouched base tensor", try Samples.tampered(p) { top in
                guard case var .object(base) = top["base"]!, case var .array(ts) = base["tensors"]!, case var .object(t) = ts[0] else { return }
                t["name"] = .string("a.extra"); ts.insert(.object(t), at: 0); base["tensors"] = .array(ts); top["base"] = .object(base)
            }, { _ in true }),
            ("residue index beyond tensor", try Samples.tampered(p, binary: { bin in
                // Step 0's residue starts after U and V; make its first gap huge.
                let s = p.steps[0]
                let at = (s.rows + s.cols) * s.rank * 4
                if s.residue.count > 0 { bin[at] = 0xFF; bin.insert(0x7F, at: at + 1) }
            }, step0 { s in
                let r = p.steps[0].residue
                s["residue"] = .object(["kind": .string("xor"), "count": .int(Int64(r.count)), "bytes": .int(Int64(r.bytes.count + 1))])
            }), { if case .invalidResidue = $0 { true } else { false } }),
        ]
        for (label, bytes, check) in cases {
            do {
                _ = try Patch.decode(bytes)
                Issue.record("\(label) was accepted")
            } catch let e as PatchError {
                #expect(check(e), "\(label): \(e)")
            }
        }
    }
}

extension Array where Element == UInt8 {
    /// The same .wpatch with one hex digit of the stored id changed (content re-compressed).
    func withWrongID() throws -> [UInt8] {
        var content = try Array(self.dropFirst(12)).withUnsafeBytes { try Zstd.decompress($0, maxSize: 1 << 24) }
        let key = Array(#""id":""#.utf8)
        guard let at = (0..<(content.count - key.count)).first(where: { content[$0..<($0 + key.count)].elementsEqual(key) }) else { return self }
        content[at + key.count] = content[at + key.count] == UInt8(ascii: "0") ? UInt8(ascii: "1") : UInt8(ascii: "0")
        return try Samples.wrap(content)
    }
}
