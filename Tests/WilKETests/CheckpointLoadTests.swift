import Foundation
import Formats
import Testing
import TestSupport
@testable import WilKE

/// The tiny fixture models loaded the way the tool loads checkpoints (Checkpoint → CheckpointWeights,
/// the checkpoint's `ModelConfig`) give transformers' logits.
@Suite struct CheckpointLoadTests {
    @Test(arguments: fixtureArchs) func checkpointPathMatchesTheReference(arch: String) throws {
        let fx = try FixtureModel(arch)
        let dir = TestPaths.fixture("WilKETests", "models/\(arch)")
        let ckpt = try Checkpoint.open(dir)
        let config = try #require(ckpt.config)
        #expect(config == fx.config, "\(arch): \(config) vs \(fx.config)")
        let model = try TransformerModel(config: config, weights: CheckpointWeights(ckpt))
        let rows = try fx.rows
        let out = try model.forward(ForwardBatch.allLogits([rows[0]]))
        let ref = try fx.values("logits.row0")
        let v = fx.config.vocabSize
        var worst: Float = 0
        for (p, row) in out.logits.enumerated() { for j in 0..<v { worst = max(worst, abs(row[j] - ref[p * v + j])) } }
        print("\(arch) via Checkpoint: max abs logit diff \(worst)")
        #expect(worst <= 1e-4)
    }
}
