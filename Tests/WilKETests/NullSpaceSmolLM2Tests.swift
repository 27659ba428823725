import Foundation
import Formats
import Patch
import Testing
import TestSupport
@testable import WilKE

/// `--preserve null-space` end to end on the real SmolLM2 with a short budget: two ROME edits through
/// the `Editor` (the second sees the first's key), the patch records what produced them, applies and
/// reverts byte-exactly, and a replay rebuilds the same preserved-key accumulator.
@Suite(.serialized) struct NullSpaceSmolLM2Tests {
    static let facts = [
        EditRequest(prompt: "{} is located in the city of", subject: "The Eiffel Tower", targetNew: "Rome", targetTrue: "Paris"),
        EditRequest(prompt: "The capital of {} is", subject: "Japan", targetNew: "Seoul", targetTrue: "Tokyo"),
    ]

    @Test(.enabled(if: RealModel.available))
    func nullSpacePatchAppliesAndRevertsExactly() throws {
        let loaded = try LoadedModel(path: RealModel.path)
        var hp = EditHyperparameters.defaults(layers: loaded.config.nLayer, family: .llama)
        hp.steps = 3
        hp.templateLengths = [[5, 5]]
        hp.preserve = .nullSpace
        let layer = hp.romeLayer
        let cache = StatsCache()
        let stats = try KeyStatistics.compute(model: loaded.model, tokenizer: loaded.tokenizer,
                                              fingerprint: ModelFingerprint(checkpoint: loaded.checkpoint, nLayer: loaded.config.nLayer),
                                              options: StatsOptions(layers: [layer]), cache: cache)
        let ns = try cache.nullSpace(for: stats[0].key, threshold: hp.nullSpaceThreshold)
        #expect(ns.rank > 0 && ns.rank < ns.dim)
        // A second lookup reads the cached file, identical to the computed one.
        #expect(try cache.nullSpace(for: stats[0].key, threshold: hp.nullSpaceThreshold) == ns)
        let solver = stats[0].covariance.solver
        let source = KeyStatisticsSource(solve: { $0 == layer ? solver : nil }, nullSpace: { $0 == layer ? ns : nil })
        let editor = Editor(loaded, hyperparameters: hp, statistics: source)
        for f in Self.facts { _ = try editor.edit(f, method: .rome, allowKnownTarget: true) }
        let patch = editor.patch()
        #expect(patch.steps.count == 2)
        let records = patch.steps.compactMap(\.edits.first)
        #expect(records.map { $0.hyperParameters["preserve"] } == ["null-space", "null-space"])
        #expect(records.map { $0.hyperParameters["preserved_keys"] } == ["0", "1"])
        #expect(records.allSatisfy { $0.hyperParameters["null_space_rank"] == String(ns.rank) })
        #expect(editor.statistics.preserved[layer]?.count == 2)

        // A replay (an evaluation's resume) rebuilds the accumulator exactly.
        let again = Editor(try LoadedModel(path: RealModel.path), hyperparameters: hp, statistics: source)
        try again.replay(patch)
        #expect(again.statistics.preserved[layer] == editor.statistics.preserved[layer])

        let dir = try TestPaths.scratch("null-space-patch")
        defer { try? FileManager.default.removeItem(at: dir) }
        let decoded = try Patch.decode(try patch.encode())
        let edited = dir.appendingPathComponent("edited.gguf").path, reverted = dir.appendingPathComponent("reverted.gguf").path
        _ = try CheckpointPatching.apply([decoded], to: loaded.checkpoint, output: edited)
        let e = try Checkpoint.open(edited)
        #expect(try CheckpointPatching.verify(decoded, against: e).state == .applied)
        try CheckpointPatching.revert([decoded], from: e, output: reverted)
        let original = try Data(contentsOf: URL(fileURLWithPath: RealModel.path))
        #expect(try Data(contentsOf: URL(fileURLWithPath: reverted)) == original)
    }
}
