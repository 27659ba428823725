import Foundation
import Formats
import Testing
import TestSupport

/// The header tools on a checkpoint whose architecture the engine does not implement (issue #14):
/// inspect, diff -o, show, verify, apply and revert work; only the engine (ask) refuses, in one line.
@Suite("header tools on an unknown architecture", .serialized)
struct UnknownArchitectureCLITests {
    static let architecture = "madeup"

    /// A tiny GGUF of architecture `madeup` (a Q8_0 embedding, an F32 and an F16 matrix, a norm);
    /// `shift` adds a rank-one change to the F32 matrix, so two files differ in one tensor.
    static func writeGGUF(_ path: String, shift: Float) throws {
        let rows = 16, cols = 32
        func values(_ n: Int, seed: Int) -> [Float] { (0..<n).map { Float(($0 * 7919 + seed * 104_729) % 997) / 997 - 0.5 } }
        var matrix = values(rows * cols, seed: 2)
        for r in 0..<rows { for c in 0..<cols { matrix[r * cols + c] += shift * Float(r + 1) * Float(c % 3) } }
        let meta: [(key: String, value: GGUFValue)] = [
            ("general.architecture", .text(architecture)), ("general.name", .string("unknown-architecture test")),
            ("\(architecture).block_count", .uint32(1)), ("\(architecture).embedding_length", .uint32(UInt32(cols))),
        ]
        let tensors: [(String, [Int], DType, [Float])] = [
            ("token_embd.weight", [cols, 64], .q8_0, values(cols * 64, seed: 1)),
            ("blk.0.ffn_down.weight", [cols, rows], .f32, matrix),
            ("blk.0.attn_q.weight", [cols, cols], .f16, values(cols * cols, seed: 3)),
            ("blk.0.attn_norm.weight", [cols], .f32, values(cols, seed: 4)),
        ]
        var w = GGUFWriter(metadata: meta)
        for (name, ne, dtype, v) in tensors {
            let bytes = try TensorCodec.quantize(dtype, v)
            w.addTensor(name: name, ne: ne, dtype: dtype, source: .fill { $0.copyMemory(from: UnsafeRawBufferPointer(start: bytes, count: bytes.count)) })
        }
        try w.write(to: path, overwrite: true)
    }

    /// The file's SHA-256; the mapping lives until hashed (`bytes` is a view into it).
    func sha(_ path: String) throws -> String {
        let file = try MappedFile(path: path)
        return withExtendedLifetime(file) { CheckpointRealSHA.hex(file.bytes) }
    }

    @Test func headerToolsWorkEngineRefuses() throws {
        let dir = try TestPaths.scratch("unknown-arch")
        defer { try? FileManager.default.removeItem(at: dir) }
        func path(_ name: String) -> String { dir.appendingPathComponent(name).path }
        let a = path("a.gguf"), b = path("b.gguf"), p = path("p.wpatch")
        try Self.writeGGUF(a, shift: 0)
        try Self.writeGGUF(b, shift: 0.01)

        let inspect = try runWilke(["inspect", a, "--json"])
        #expect(inspect.status == 0, "\(inspect.stderr)")
        let obj = try JSONSerialization.jsonObject(with: Data(inspect.stdout.utf8)) as? [String: Any]
        #expect(obj?["architecture"] as? String == Self.architecture)
        #expect((obj?["tensors"] as? [[String: Any]])?.count == 4)
        #expect(try runWilke(["inspect", a]).stdout.contains("unsupported architecture 'madeup'"))

        let diff = try runWilke(["diff", a, b, "-o", p])
        #expect(diff.status == 0, "\(diff.stderr)")
        let show = try runWilke(["show", p, "--json"])
        #expect(show.status == 0, "\(show.stderr)")
        let shown = try JSONSerialization.jsonObject(with: Data(show.stdout.utf8)) as? [String: Any]
        #expect((shown?["steps"] as? [[String: Any]])?.map { $0["tensor"] as? String } == ["blk.0.ffn_down.weight"])

        let verify = try runWilke(["verify", a, p, "--json"])
        #expect(verify.status == 0, "\(verify.stderr)")
        #expect((try JSONSerialization.jsonObject(with: Data(verify.stdout.utf8)) as? [String: Any])?["state"] as? String == "applies cleanly")

        let applied = path("applied.gguf"), reverted = path("reverted.gguf")
        let apply = try runWilke(["apply", a, p, "-o", applied])
        #expect(apply.status == 0, "\(apply.stderr)")
        let edited = try Checkpoint.open(applied), target = try Checkpoint.open(b)
        let name = "blk.0.ffn_down.weight"
        #expect(try edited.floats(edited.tensor(name)!) == target.floats(target.tensor(name)!))
        #expect(try runWilke(["verify", applied, p, "--json"]).status == 2, "already applied")
        let revert = try runWilke(["revert", applied, p, "-o", reverted])
        #expect(revert.status == 0, "\(revert.stderr)")
        #expect(try sha(reverted) == sha(a), "revert is byte-exact")

        // The engine needs the hyper-parameters: one line naming the architecture, no crash.
        let ask = try runWilke(["ask", a, "hello"])
        #expect(ask.status != 0)
        let lines = ask.stderr.split(separator: "\n")
        #expect(lines.count == 1 && ask.stderr.contains("unsupported architecture 'madeup'"), "\(ask.stderr)")
    }
}
