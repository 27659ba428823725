import Foundation
import Testing
import Formats
import TestSupport
@testable import WilKE

/// The real SmolLM2-135M-Instruct (Q4_1 GGUF) against transformers loading the same GGUF
/// (samples/reference/smollm2_top5.json, made by samples/reference/make_smollm2_reference.py).
@Suite(.serialized) struct SmolLM2Tests {
    typealias Reference = Top5Reference

    static func reference() throws -> Reference {
        let data = try Data(contentsOf: URL(fileURLWithPath: TestPaths.reference("smollm2_top5.json")))
        return try JSONDecoder().decode(Reference.self, from: data)
    }

    nonisolated(unsafe) static var shared: LoadedModel?
    static func model() throws -> LoadedModel {
        if let m = shared { return m }
        let m = try LoadedModel(path: RealModel.path)
        shared = m
        return m
    }

    @Test(.enabled(if: RealModel.available))
    func greedyTokenAndTop5LogitsMatchTransformers() throws {
        let ref = try Self.reference()
        let m = try Self.model()
        #expect(ref.prompts.count == 20)
        let worst = try ref.expectMatches(m)
        print("SmolLM2 top-5 logits vs transformers: max abs diff \(worst)")
    }

    @Test(.enabled(if: RealModel.available))
    func parisWithTheReferenceProbability() throws {
        let m = try Self.model()
        let top = try m.nextTokens(after: try m.encodePrompt("The capital of France is"), top: 5)
        #expect(top[0].piece == " Paris")
        #expect(abs(top[0].probability - 0.7725) < 0.01, "\(top[0].probability)")
    }

    /// The same model converted to a safetensors directory gives the same numbers.
    @Test(.enabled(if: RealModel.available))
    func convertedDirectoryGivesTheSameNumbers() throws {
        let dir = try TestPaths.scratch("smol-hf")
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("hf").path
        try Converter.ggufToHuggingFace(try Checkpoint.open(RealModel.path), output: out, dtype: .f32, overwrite: false)
        let a = try Self.model()
        let b = try LoadedModel(path: out)
        let prompt = "The capital of France is"
        let ids = try a.encodePrompt(prompt)
        #expect(try b.encodePrompt(prompt) == ids)
        let ta = try a.nextTokens(after: ids, top: 5), tb = try b.nextTokens(after: ids, top: 5)
        #expect(ta.map(\.id) == tb.map(\.id))
        let diff = zip(ta, tb).map { abs($0.logit - $1.logit) }.max() ?? 0
        print("GGUF vs converted directory: max top-5 logit diff \(diff)")
        #expect(diff < 1e-4)
    }

    @Test(.enabled(if: RealModel.available))
    func badPromptsAreClearErrors() throws {
        let m = try Self.model()
        #expect(throws: WilKEError.invalidRequest("the prompt is empty")) { try m.encodePrompt("") }
        let long = String(repeating: "word ", count: 9000)
        #expect(throws: WilKEError.self) { try m.encodePrompt(long) }
        #expect(throws: WilKEError.self) { try m.model.forward(ForwardBatch(sequences: [[60_000]], logitsAt: [TokenPosition(row: 0, pos: 0)])) }
    }
}
