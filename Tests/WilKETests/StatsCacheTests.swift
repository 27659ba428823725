import Foundation
import Testing
import TestSupport
@testable import WilKE

struct Interrupted: Error {}

/// A small llama fixture setup: model, fingerprint, token documents and a scratch cache.
struct StatsFixture {
    let fx: FixtureModel
    let fingerprint: ModelFingerprint
    let docs: [[Int]]
    let dir: URL
    let cache: StatsCache

    init(_ tag: String) throws {
        fx = try FixtureModel("llama")
        fingerprint = ModelFingerprint(model: fx.model)
        docs = randomDocs(20, vocab: fx.config.vocabSize, maxLen: 40, seed: 21)
        dir = try TestPaths.scratch(tag)
        cache = StatsCache(directory: dir.path + "/stats")
    }

    var options: StatsOptions {
        var o = StatsOptions(layers: [0, 1])
        o.keepMoment = true  // the tests compare moments
        o.batchTokens = 64
        return o
    }

    func run(_ o: StatsOptions? = nil, progress: (StatsProgress) throws -> Void = { _ in }) throws -> [LayerStats] {
        try KeyStatistics.compute(model: fx.model, fingerprint: fingerprint, corpusID: "test-docs", budget: 300,
                                  options: o ?? options, cache: cache, documents: { docs }, progress: progress)
    }

    /// Every name in the cache directory, hidden temp files included.
    var files: [String] { (try? FileManager.default.contentsOfDirectory(atPath: cache.directory)) ?? [] }
}

@Suite struct StatsCacheTests {
    @Test func roundTripAndReuse() throws {
        let s = try StatsFixture("stats-roundtrip")
        let first = try s.run()
        #expect(first.map(\.cached) == [false, false])
        #expect(first.allSatisfy { $0.covariance.count == 300 })
        #expect(s.files.filter { $0.hasSuffix(".wstats") }.sorted() == first.map { ($0.path as NSString).lastPathComponent }.sorted())
        // Each statistics file has its Cholesky factor beside it.
        #expect(s.files.filter { $0.hasSuffix(".wchol") }.sorted() == first.map { ($0.key.fileName as NSString).deletingPathExtension + ".wchol" }.sorted())
        let second = try s.run()
        #expect(second.map(\.cached) == [true, true])
        for (a, b) in zip(first, second) {
            #expect(a.covariance.moment == b.covariance.moment && a.covariance.count == b.covariance.count)
            #expect(a.covariance.ridge == b.covariance.ridge)
        }
        // Another budget, corpus or fingerprint is another entry.
        var o = s.options; o.tokens = nil
        let other = try KeyStatistics.compute(model: s.fx.model, fingerprint: s.fingerprint, corpusID: "test-docs", budget: 200,
                                              options: o, cache: s.cache, documents: { s.docs })
        #expect(other.map(\.cached) == [false, false] && other[0].covariance.count == 200)
        #expect(s.files.count == 8)
    }

    /// An edit reads the cached factor instead of factoring C: the same solves; a corrupt factor file, or
    /// one of statistics since replaced, is never used (the factor is computed again and rewritten).
    @Test func factorFileIsReusedOnlyForItsStatistics() throws {
        let s = try StatsFixture("stats-factor")
        let fresh = try s.run()[1]
        let key = fresh.key
        let k = (0..<fresh.covariance.dim).map { Float(sin(Double($0) + 1)) }
        let cached = try #require(s.cache.loadFactor(key))
        #expect(cached.packedMoment == nil && cached.ridge == fresh.covariance.ridge && cached.diagonal == fresh.covariance.diagonal)
        #expect(try cached.solve(k) == fresh.covariance.solve(k))
        #expect(try s.cache.covariance(key).solve(k) == fresh.covariance.solve(k))

        // Corrupt one byte of L: rejected, refactored by the next load, and the file rewritten valid.
        let path = s.cache.factorPath(for: key)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        bytes[bytes.count - 40] ^= 0x10
        try bytes.write(to: URL(fileURLWithPath: path))
        #expect(s.cache.loadFactor(key) == nil)
        #expect(try s.cache.covariance(key).solve(k) == fresh.covariance.solve(k))
        #expect(s.cache.loadFactor(key) != nil)

        // New statistics under the same key (another writer): the old factor no longer matches them.
        var packed = try s.cache.readPacked(key).values
        for i in 0..<fresh.covariance.dim { packed[KeyCovariance.diagonalIndex(i, fresh.covariance.dim)] *= 2 }
        try s.cache.store(packed: packed, count: fresh.covariance.count, key: key)
        #expect(s.cache.loadFactor(key) == nil)
        let doubled = try s.cache.covariance(key)
        #expect(doubled.diagonal == fresh.covariance.diagonal.map { $0 * 2 })
        #expect(s.cache.loadFactor(key)?.diagonal == doubled.diagonal)
    }

    /// `prepare` (what `wilke edit` uses) stores what is missing or damaged and loads nothing; a layer's
    /// factor loaded later for one solve gives the same C⁻¹k as the computed statistics.
    @Test func prepareStoresWhatIsMissingAndLoadsLater() throws {
        let s = try StatsFixture("stats-prepare")
        var reads = 0
        func prepare() throws -> [StatsKey] {
            try KeyStatistics.prepare(model: s.fx.model, fingerprint: s.fingerprint, corpusID: "test-docs", budget: 300,
                                      options: s.options, cache: s.cache, documents: { reads += 1; return s.docs })
        }
        let keys = try prepare()
        #expect(keys.map(\.layer) == [0, 1] && reads == 1 && s.files.count == 4)  // statistics and factors
        let computed = try s.run()
        #expect(computed.map(\.cached) == [true, true])
        let k = (0..<s.fx.config.dFF).map { Float($0 % 7) - 3 }
        for (key, stats) in zip(keys, computed) {
            #expect(try s.cache.covariance(key).solve(k) == stats.covariance.solve(k))
        }
        _ = try prepare()
        #expect(reads == 1)  // every file valid: no corpus pass
        let path = s.cache.path(for: keys[1])
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        try bytes.prefix(bytes.count - 100).write(to: URL(fileURLWithPath: path))
        #expect(throws: WilKEError.self) { try s.cache.covariance(keys[1]) }
        _ = try prepare()
        #expect(reads == 2)
        #expect(try s.cache.covariance(keys[1]).solve(k) == computed[1].covariance.solve(k))
        try FileManager.default.removeItem(atPath: path)
        #expect(throws: WilKEError.self) { try s.cache.covariance(keys[1]) }
    }

    @Test(arguments: ["truncate", "flip-payload", "flip-header", "wrong-key"])
    func damagedFileIsRejectedAndRecomputed(damage: String) throws {
        let s = try StatsFixture("stats-damage")
        let first = try s.run()
        let path = first[1].path
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        switch damage {
        case "truncate": bytes = bytes.prefix(bytes.count - 100)
        case "flip-payload": bytes[bytes.count / 2] ^= 0x10
        case "flip-header": bytes[20] ^= 0x01
        default: bytes = try Data(contentsOf: URL(fileURLWithPath: first[0].path))  // layer 0's file under layer 1's name
        }
        try bytes.write(to: URL(fileURLWithPath: path))
        guard case .rejected(let why) = s.cache.load(first[1].key) else {
            Issue.record("a \(damage) file was not rejected"); return
        }
        print("\(damage): rejected because \(why)")
        let again = try s.run()
        #expect(again[0].cached && !again[1].cached)
        #expect(again[1].rejected != nil)
        #expect(again[1].covariance.moment == first[1].covariance.moment)
        guard case .hit = s.cache.load(first[1].key) else { Issue.record("the recomputed file is not valid"); return }
    }

    /// A run aborted during the statistics pass writes nothing: no entry, no temp file.
    @Test func interruptionLeavesNoEntry() throws {
        let s = try StatsFixture("stats-interrupt")
        var calls = 0
        #expect(throws: Interrupted.self) {
            try s.run { p in
                calls += 1
                if p.phase == .collecting && p.done > 0 { throw Interrupted() }
            }
        }
        #expect(calls >= 2)
        #expect(s.files.isEmpty, "left behind: \(s.files)")
        // The next run starts from scratch and succeeds.
        #expect(try s.run().map(\.cached) == [false, false])
    }

    /// A crash between writing the bytes and the rename leaves no entry and (thrown) no temp file; a temp
    /// file of a dead writer (kill -9) is swept by the next store.
    @Test func failedCommitLeavesNoFile() throws {
        let s = try StatsFixture("stats-commit")
        let c = try StatsCollector(model: s.fx.model, layers: [0])
        try KeyStatistics.collect(c, s.docs, batchTokens: 64)
        let cov = try c.covariance(layer: 0)
        let key = StatsKey(layer: 0, fingerprint: s.fingerprint.layers[0], corpus: "x", tokens: 1, maxLength: 2)
        #expect(throws: Interrupted.self) { try s.cache.store(cov, key: key, beforeCommit: { throw Interrupted() }) }
        #expect(s.files.isEmpty, "left behind: \(s.files)")
        guard case .missing = s.cache.load(key) else { Issue.record("an entry appeared"); return }

        var deadPID: Int32 = 999_999
        while kill(deadPID, 0) == 0 || errno != ESRCH { deadPID -= 1 }
        let stale = s.cache.directory + "/.\(key.fileName).tmp-\(deadPID)-42"
        let live = s.cache.directory + "/.\(key.fileName).tmp-\(getpid())-43"
        for p in [stale, live] { _ = FileManager.default.createFile(atPath: p, contents: Data([1, 2, 3])) }
        try s.cache.store(cov, key: key)
        #expect(!FileManager.default.fileExists(atPath: stale))
        #expect(FileManager.default.fileExists(atPath: live))
        guard case .hit(let back) = s.cache.load(key) else { Issue.record("no hit after store"); return }
        #expect(back.moment == cov.moment && back.count == cov.count)
    }

    /// An edit of layer 0's MLP output changes the fingerprint of layer 1 only.
    @Test func fingerprintFollowsWhatKeysDependOn() throws {
        let fx = try FixtureModel("llama")
        let before = ModelFingerprint(model: fx.model)
        #expect(before.layers.count == 2 && before.layers.allSatisfy { $0.count == 64 })
        #expect(before == ModelFingerprint(model: fx.model))
        var w = fx.model.mlpOutputWeight(layer: 0)
        w[5] += 0.25
        try fx.model.setMLPOutputWeight(layer: 0, w)
        let after = ModelFingerprint(model: fx.model)
        #expect(after.layers[0] == before.layers[0])
        #expect(after.layers[1] != before.layers[1])
        var w1 = fx.model.mlpOutputWeight(layer: 1)
        w1[0] += 1
        try fx.model.setMLPOutputWeight(layer: 1, w1)
        let last = ModelFingerprint(model: fx.model)
        #expect(last.layers == after.layers)  // the last layer's ffn_down feeds no key
        #expect(last.model != after.model && after.model != before.model)  // but the whole model changed
    }
}
