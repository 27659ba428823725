import Dispatch
import Synchronization

/// The solve C_l x = k of one layer (nil: C = I).
public typealias CovarianceSolve = @Sendable ([Float]) throws -> [Double]

extension TransformerModel {
    /// WilKE's scan (ALGORITHM.md §1.1): the rank-one update at every layer of `layers`, each computed on the
    /// unchanged weights, so the layers are independent. With `workers` > 1 that many layers run side by
    /// side, each on one core with single-threaded BLAS: the scan's matrices are small ([T ≈ 100, C] x
    /// [C, F]), and two of them in parallel keep two cores busier than one sgemm split in two. Each
    /// layer's arithmetic is the same either way, so the results do not depend on `workers`.
    /// Layers are handed out in the given order (low layers, the most work, first).
    /// - covariance: one solve per entry of `layers`.
    /// - exclusiveBLAS: switch OpenBLAS to one thread (process-wide) while the workers run. Only safe when
    ///   no other thread of the process calls BLAS meanwhile: changing the thread count under another
    ///   thread's call made a concurrent test's results differ. Tests pass false (their matrices are too
    ///   small for OpenBLAS to thread anyway).
    /// - shared: the δ = 0 pass and keys computed once for all of `layers` (`sharedScanPass`), or nil to
    ///   compute them per layer; the results are the same.
    /// - done: called once per finished layer, one call at a time, with the count finished so far.
    func scan(_ inputs: RomeInputs, layers: [Int], _ hp: EditHyperparameters, covariance: [CovarianceSolve?],
              workers: Int, exclusiveBLAS: Bool = true, shared: SharedScanPass? = nil,
              done: @escaping (RankOneUpdate, Int) -> Void) throws -> [RankOneUpdate] {
        try scan(inputs, layers: layers, hp, statistics: covariance.map { LayerKeyStatistics(solve: $0) },
                 anchors: Array(repeating: nil, count: layers.count), workers: workers, exclusiveBLAS: exclusiveBLAS,
                 shared: shared, done: done)
    }

    /// `scan` with each layer's full statistics and NAS anchor (nil: none), one entry per layer.
    func scan(_ inputs: RomeInputs, layers: [Int], _ hp: EditHyperparameters, statistics: [LayerKeyStatistics],
              anchors: [Float?], workers: Int, exclusiveBLAS: Bool = true, shared: SharedScanPass? = nil,
              done: @escaping (RankOneUpdate, Int) -> Void) throws -> [RankOneUpdate] {
        precondition(statistics.count == layers.count && anchors.count == layers.count)
        let n = max(1, min(workers, layers.count))
        // A last round with fewer layers than workers (the fast scan's third layer on 2 cores) runs on its
        // own with BLAS threaded as usual, instead of on one core beside idle ones.
        let tail = layers.count % n
        if n > 1 && exclusiveBLAS && tail > 0 && layers.count > n {
            let split = layers.count - tail
            let head = try scan(inputs, layers: Array(layers[..<split]), hp, statistics: Array(statistics[..<split]),
                                anchors: Array(anchors[..<split]), workers: n, exclusiveBLAS: true, shared: shared, done: done)
            let rest = try scan(inputs, layers: Array(layers[split...]), hp, statistics: Array(statistics[split...]),
                                anchors: Array(anchors[split...]), workers: tail, exclusiveBLAS: true, shared: shared) { up, k in
                done(up, split + k)
            }
            return head + rest
        }
        let next = Atomic<Int>(0), failed = Atomic<Bool>(false)
        let results = Mutex<[Result<RankOneUpdate, any Error>?]>(Array(repeating: nil, count: layers.count))
        let finished = Mutex<Int>(0)
        let report = SerializedCallback(body: done)
        // One worker runs inline on the caller's thread: the sequential scan is the same loop.
        let run = {
            DispatchQueue.concurrentPerform(iterations: n) { _ in
                while !failed.load(ordering: .relaxed) {
                    let i = next.add(1, ordering: .relaxed).oldValue
                    guard i < layers.count else { return }
                    let r = Result {
                        try self.rankOneUpdate(inputs, layer: layers[i], hp, statistics: statistics[i], anchor: anchors[i], shared: shared)
                    }
                    results.withLock { $0[i] = r }
                    switch r {
                    case .success(let up): finished.withLock { $0 += 1; report.body(up, $0) }
                    case .failure: failed.store(true, ordering: .relaxed)
                    }
                }
            }
        }
        if n > 1 && exclusiveBLAS { BLAS.singleThreaded(run) } else { run() }
        // The first failure in layer order, as the one-by-one loop would have thrown.
        let all = results.withLock { $0 }
        if let bad = all.first(where: { if case .failure = $0 { true } else { false } }) { _ = try bad!.get() }
        return try all.map { try $0!.get() }
    }
}

/// A callback the scan's workers call only while holding a lock, so never two at once: that is what
/// makes handing a non-Sendable closure to them safe.
private struct SerializedCallback: @unchecked Sendable {
    let body: (RankOneUpdate, Int) -> Void
}
