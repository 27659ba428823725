import Foundation
import Formats
import Testing
import TestSupport

/// A checkpoint with a tensor the engine has no kernel for (IQ4_NL here) is refused by `ask` and `edit`
/// in one line that names the tensor and its dtype, before any work starts (issue #11): nothing is
/// computed, no output is written. Both kinds of tensor: a vector (read whole, through the codec) and a
/// matrix (kept as a stored-form view).
@Suite struct UncomputableDTypeCLITests {
    /// SmolLM2's GGUF with `tensor` re-typed as IQ4_NL (zero bytes of that type's size); every other
    /// tensor and all metadata copied.
    static func retyped(_ tensor: String, to path: String) throws {
        let file = try GGUFFile(path: RealModel.path)
        var w = GGUFWriter(version: file.version, metadata: file.metadata)
        for t in file.tensors {
            if t.name == tensor { w.addTensor(name: t.name, ne: t.ne, dtype: .iq4_nl, source: .fill { _ in }) }
            else { w.addTensor(name: t.name, ne: t.ne, dtype: t.dtype, source: .bytes(file.data(t))) }
        }
        try withExtendedLifetime(file) { try w.write(to: path, overwrite: true) }
    }

    @Test(.enabled(if: RealModel.available), arguments: ["output_norm.weight", "blk.5.ffn_down.weight"])
    func askAndEditRefuseInOneLine(tensor: String) throws {
        let dir = try TestPaths.scratch("uncomputable-dtype")
        defer { try? FileManager.default.removeItem(at: dir) }
        let model = dir.appendingPathComponent("iq4nl.gguf").path, out = dir.appendingPathComponent("e.wpatch").path
        try Self.retyped(tensor, to: model)
        let runs = [
            ["ask", model, "The capital of France is"],
            ["edit", model, "--prompt", "{} is located in", "--subject", "The Eiffel Tower", "--target", "Rome",
             "--method", "rome", "--no-covariance", "-o", out],
        ]
        for args in runs {
            let r = try runWilke(args)
            #expect(r.status != 0, "\(args[0])")
            #expect(r.stderr.split(separator: "\n").count == 1, "\(args[0]): \(r.stderr)")
            #expect(r.stderr.contains("tensor \(tensor) is stored as IQ4_NL, which the engine cannot compute with"), "\(args[0]): \(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: out))
        }
    }
}
