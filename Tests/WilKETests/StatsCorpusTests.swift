import Foundation
import Testing
import TestSupport
@testable import WilKE

/// A stand-in tokenizer for the 96-token fixture models: one id per byte (1 + byte % 95), no BOS, eos 0.
struct ByteIDTokenizer: Tokenizer {
    var vocabularySize: Int { 96 }
    var bosID: Int? { nil }
    var eosID: Int? { 0 }
    var addsBOS: Bool { false }
    func encode(_ text: String, addSpecial: Bool) -> [Int] { text.utf8.map { 1 + Int($0) % 95 } }
    func decode(_ ids: [Int]) -> String { "" }
    func piece(_ id: Int) -> String { "" }
}

@Suite struct StatsCorpusTests {
    @Test func plainTextSplitsOnBlankLines() throws {
        let docs = CorpusReader.paragraphs("first line\nsecond line\n\n  \t\nthird\r\n\r\nfourth\n\n\n")
        #expect(docs == ["first line\nsecond line", "third", "fourth"])
        #expect(CorpusReader.paragraphs("\n\n").isEmpty)
    }

    @Test func jsonLinesAndTheirErrors() throws {
        let dir = try TestPaths.scratch("stats-corpus")
        let good = dir.appendingPathComponent("c.jsonl")
        try Data(#"{"text": "one", "id": 1}\#n\#n{"text":"two \"quoted\""}\#n{"text":""}\#n"#.utf8).write(to: good)
        #expect(try CorpusReader.documents(path: good.path) == ["one", #"two "quoted""#])

        let bad = dir.appendingPathComponent("bad.jsonl")
        try Data("{\"text\": \"ok\"}\n{\"title\": \"no text\"}\n".utf8).write(to: bad)
        #expect(throws: WilKEError.invalidCorpus(path: bad.path, reason: #"line 2 has no string "text" field"#)) {
            try CorpusReader.documents(path: bad.path)
        }
        try Data("{\"text\": \"ok\"}\n\n{\"text\": \"cut\n".utf8).write(to: bad)
        #expect(throws: WilKEError.invalidCorpus(path: bad.path, reason: "line 3 is not a JSON object")) {
            try CorpusReader.documents(path: bad.path)
        }
        let missing = dir.appendingPathComponent("none.txt").path
        #expect(throws: WilKEError.io(path: missing, reason: "cannot read the corpus file")) {
            try CorpusReader.documents(path: missing)
        }
        // The identity follows the contents, not the name.
        let copy = dir.appendingPathComponent("copy.jsonl")
        try FileManager.default.copyItem(at: good, to: copy)
        #expect(try StatsCorpus.file(good.path).identity() == StatsCorpus.file(copy.path).identity())
        #expect(try StatsCorpus.file(good.path).identity() != StatsCorpus.file(bad.path).identity())
    }

    /// Sampling is reproducible per seed, fills the budget exactly, and respects starts and max length.
    @Test func sampledCorpusRecipe() throws {
        let fx = try FixtureModel("llama")
        let starts = [[5], [6, 7]]
        let sampler = TextSampler(model: fx.model, starts: starts, endTokens: [0], maxLength: 20)
        let a = try sampler.documents(tokens: 150, seed: 9)
        let b = try sampler.documents(tokens: 150, seed: 9)
        let c = try sampler.documents(tokens: 150, seed: 10)
        #expect(a == b && a != c)
        #expect(a.reduce(0) { $0 + $1.count } == 150)
        for (i, d) in a.enumerated() {
            #expect(d.count <= 20)
            #expect(Array(d.prefix(starts[i % 2].count)) == starts[i % 2] || d.count < starts[i % 2].count)
            #expect(!d.dropLast().contains(0))  // an end token closes its document
        }
        print("sampled docs: \(a.count), lengths \(a.map(\.count))")
    }

    /// The sampler's in-place decoding step gives the logits of a full forward pass (prefill, then one
    /// token per row on the caches), for every family.
    @Test(arguments: fixtureArchs) func decodeStepMatchesForward(arch: String) throws {
        let fx = try FixtureModel(arch)
        let prompts = [[1, 2, 3], [4, 5], [9]]
        var kv = prompts.map { _ in KVCache(nLayer: fx.config.nLayer, kvDim: fx.config.kvDim) }
        let first = try fx.model.decodeStep(prompts, &kv)
        let second = try fx.model.decodeStep([[6], [7], [8]], &kv)
        let full = prompts.enumerated().map { $1 + [[6], [7], [8]][$0] }
        let ref = try fx.model.forward(ForwardBatch(sequences: full, logitsAt: full.enumerated().flatMap { r, s in
            [TokenPosition(row: r, pos: s.count - 2), TokenPosition(row: r, pos: s.count - 1)]
        }))
        var worst: Float = 0
        for r in 0..<3 {
            worst = max(worst, maxAbsDiff(first[r], ref.logits[2 * r]), maxAbsDiff(second[r], ref.logits[2 * r + 1]))
        }
        print("\(arch): decodeStep vs forward logits max abs diff \(worst)")
        #expect(worst <= 1e-4)
        #expect(kv.map(\.count) == [4, 3, 2])
    }

    @Test func topKSampling() {
        var rng = SeededGenerator(seed: 1)
        let logits: [Float] = [0.5, 3, 3, -1, 2.9]
        // k = 1 is argmax, ties to the lower id.
        #expect((0..<20).allSatisfy { _ in TextSampler.sampleTopK(logits, k: 1, &rng) == 1 })
        // k = 3 never draws outside the three largest.
        var seen = Set<Int>()
        for _ in 0..<500 { seen.insert(TextSampler.sampleTopK(logits, k: 3, &rng)) }
        #expect(seen == [1, 2, 4])
    }

    /// The tokenizer-level entry point: a .txt corpus and the default sampled corpus, both cached.
    @Test func computeFromTextAndSampledCorpora() throws {
        let fx = try FixtureModel("llama")
        let dir = try TestPaths.scratch("stats-sources")
        let corpus = dir.appendingPathComponent("corpus.txt")
        try Data(String(repeating: "The capital of France is Paris.\n\nWater boils at 100 degrees.\n\n", count: 8).utf8).write(to: corpus)
        let cache = StatsCache(directory: dir.path + "/stats")
        let fp = ModelFingerprint(model: fx.model)
        var o = StatsOptions(layers: [1]); o.keepMoment = true; o.tokens = 200; o.maxLength = 16; o.corpus = .file(corpus.path)
        let fromFile = try KeyStatistics.compute(model: fx.model, tokenizer: ByteIDTokenizer(), fingerprint: fp, options: o, cache: cache)
        #expect(fromFile[0].covariance.count == 200 && !fromFile[0].cached)
        #expect(fromFile[0].key.corpus.hasPrefix("file-"))

        o.corpus = .sampled(seed: 3)
        var phases: [StatsProgress.Phase] = []
        let sampled = try KeyStatistics.compute(model: fx.model, tokenizer: ByteIDTokenizer(), fingerprint: fp, options: o,
                                                cache: cache) { p in if phases.last != p.phase { phases.append(p.phase) } }
        #expect(phases == [.sampling, .collecting])
        #expect(sampled[0].covariance.count == 200 && sampled[0].key.corpus == "sampled-v1-k50-s3")
        let again = try KeyStatistics.compute(model: fx.model, tokenizer: ByteIDTokenizer(), fingerprint: fp, options: o, cache: cache)
        #expect(again[0].cached && again[0].covariance.moment == sampled[0].covariance.moment)
    }
}
