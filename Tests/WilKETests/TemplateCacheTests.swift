import Foundation
import Testing
import TestSupport
@testable import WilKE

/// ROME's context templates are sampled on a model's first edit and read back on later ones.
@Suite(.serialized) struct TemplateCacheTests {
    @Test func roundTripRefusesAnotherKey() throws {
        let dir = try TestPaths.scratch("templates-roundtrip")
        defer { try? FileManager.default.removeItem(at: dir) }
        let cache = TemplateCache(directory: dir.path)
        let lengths = [[5, 5]], t = ["{}", "a. {}", "b. {}", "c. {}", "d. {}", "e. {}"]
        #expect(cache.load(model: "m", lengths: lengths, seed: 0) == nil)
        try cache.store(t, model: "m", lengths: lengths, seed: 0)
        #expect(cache.load(model: "m", lengths: lengths, seed: 0) == t)
        #expect(cache.load(model: "m", lengths: lengths, seed: 1) == nil)
        #expect(cache.load(model: "m", lengths: [[5, 10]], seed: 0) == nil)
        // Same file name (a 16-digit prefix collision), another model inside: refused.
        let other = TemplateCache(directory: dir.path)
        try Data("{\"format\":1,\"model\":\"n\",\"lengths\":[[5,5]],\"seed\":\"0\",\"templates\":[]}".utf8)
            .write(to: URL(fileURLWithPath: other.path(model: "m", lengths: lengths, seed: 0)))
        #expect(cache.load(model: "m", lengths: lengths, seed: 0) == nil)
    }

    @Test(.enabled(if: RealModel.available))
    func editorSamplesOnceThenReads() throws {
        let dir = try TestPaths.scratch("templates-editor")
        defer { try? FileManager.default.removeItem(at: dir) }
        let m = try LoadedModel(path: RealModel.path)
        var hp = EditHyperparameters.defaults(layers: m.config.nLayer, family: .llama)
        hp.templateLengths = [[5, 5]]
        let first = Editor(m, hyperparameters: hp) { _ in nil }
        first.templateCache = TemplateCache(directory: dir.path)
        let sampled = try first.contextTemplates()
        #expect(sampled == (try ContextTemplates.sample(m, lengths: hp.templateLengths, seed: hp.templateSeed)))
        let cache = TemplateCache(directory: dir.path), model = TemplateCache.modelIdentity(m)
        #expect(cache.load(model: model, lengths: hp.templateLengths, seed: hp.templateSeed) == sampled)
        // A second editor reads the file instead of sampling: a planted file is what it gets.
        let planted = ["{}"] + (1...5).map { "planted \($0). {}" }
        try cache.store(planted, model: model, lengths: hp.templateLengths, seed: hp.templateSeed)
        let second = Editor(m, hyperparameters: hp) { _ in nil }
        second.templateCache = cache
        #expect(try second.contextTemplates() == planted)
        // Without a cache nothing is read.
        #expect(try Editor(m, hyperparameters: hp) { _ in nil }.contextTemplates() == sampled)
    }
}
