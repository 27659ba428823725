import Foundation
import Formats
import Testing
import TestSupport
@testable import WilKE

/// The SmolLM2 GGUF served through the checkpoint layer (a test-side stand-in for the lead's loader).
struct StatsCheckpointSource: WeightSource {
    let checkpoint: Checkpoint
    func tensor(_ name: String) throws -> (shape: [Int], values: [Float]) {
        guard let t = checkpoint.tensor(name) else { throw WilKEError.missingTensor(name) }
        return (t.logicalShape, try checkpoint.logical(t))
    }
    func has(_ name: String) -> Bool { checkpoint.tensor(name) != nil }
}

@Suite struct StatsRealModelTests {
    /// Sampled documents read as text, their one-pass moments equal the naive taps, and the checkpoint
    /// fingerprint is per layer, stable and distinct.
    @Test(.enabled(if: RealModel.available)) func smolLM2() throws {
        let ckpt = try Checkpoint.open(RealModel.path)
        let g = try #require(ckpt.gguf)
        let cfg = try #require(ckpt.config)
        let model = try TransformerModel(config: cfg, weights: StatsCheckpointSource(checkpoint: ckpt))
        let tok = try BPETokenizer(gguf: g)

        let starts = TextSampler.defaultStarts(tok)
        #expect(starts.count == 5)
        var sampler = TextSampler(model: model, starts: starts, endTokens: Set([tok.eosID].compactMap { $0 }), maxLength: 24)
        sampler.rowsPerBatch = 2
        let docs = try sampler.documents(tokens: 40, seed: 0)
        for d in docs { print("sampled:", tok.decode(d).debugDescription) }
        #expect(docs.reduce(0) { $0 + $1.count } == 40)

        let layers = [0, 17, 29]
        let naive = try naiveMoments(model, docs, layers: layers)
        let c = try StatsCollector(model: model, layers: layers)
        try c.add(docs)
        for l in layers {
            let m = try c.moment(layer: l), ref = naive[l]!
            let d = maxAbs(m, ref), scale = ref.map(abs).max()!
            print("SmolLM2 layer \(l): moment vs naive taps max abs diff \(d) (max |C| \(scale))")
            #expect(d <= 1e-5 * scale)
        }

        let fp = ModelFingerprint(checkpoint: ckpt, nLayer: cfg.nLayer)
        #expect(fp.layers.count == 30 && Set(fp.layers).count == 30)
        #expect(fp == ModelFingerprint(checkpoint: try Checkpoint.open(RealModel.path), nLayer: cfg.nLayer))
    }
}
