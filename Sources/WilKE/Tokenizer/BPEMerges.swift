import Foundation

/// Merge rules keyed by the ids of the two pieces: rank (lower merges first) and the id of the result.
struct BPEMerges: Sendable {
    struct Rule: Sendable {
        var rank: Int32
        var merged: Int32
    }

    private(set) var rules: [UInt64: Rule] = [:]

    @inline(__always)
    static func key(_ a: Int32, _ b: Int32) -> UInt64 { UInt64(UInt32(bitPattern: a)) << 32 | UInt64(UInt32(bitPattern: b)) }

    /// Adds a rule unless the pair already has one (as `tokenizers`, later duplicates do not re-rank).
    mutating func add(_ a: Int32, _ b: Int32, merged: Int32) {
        let k = Self.key(a, b)
        if rules[k] == nil { rules[k] = Rule(rank: Int32(rules.count), merged: merged) }
    }

    var count: Int { rules.count }

    /// Applies the rules to `symbols` in place, as `tokenizers`' `Word::merge_all`: always the pair of lowest
    /// rank, the leftmost of equal ranks. Negative ids (unknown pieces) never merge.
    ///
    /// `ranks[p]` holds the rank of the pair (p, p+1), so each step is one scan of small integers and two
    /// dictionary look-ups for the new neighbours; words are short, and long ones stay O(n²) in integers only.
    func apply(_ symbols: inout [Int32]) {
        let n = symbols.count
        guard n > 1 else { return }
        var ranks = [Int32](repeating: .max, count: n - 1)
        var merged = [Int32](repeating: -1, count: n - 1)
        for p in 0..<(n - 1) {
            if let r = rules[Self.key(symbols[p], symbols[p + 1])] { ranks[p] = r.rank; merged[p] = r.merged }
        }
        while !ranks.isEmpty {
            var best = Int32.max
            var at = -1
            for p in 0..<ranks.count where ranks[p] < best {
                best = ranks[p]
                at = p
            }
            if at < 0 { break }
            symbols[at] = merged[at]
            symbols.remove(at: at + 1)
            ranks.remove(at: at)
            merged.remove(at: at)
            if at > 0 { refresh(&ranks, &merged, symbols, at - 1) }
            if at < ranks.count { refresh(&ranks, &merged, symbols, at) }
        }
    }

    @inline(__always)
    private func refresh(_ ranks: inout [Int32], _ merged: inout [Int32], _ symbols: [Int32], _ p: Int) {
        if let r = rules[Self.key(symbols[p], symbols[p + 1])] {
            ranks[p] = r.rank
            merged[p] = r.merged
        } else {
            ranks[p] = .max
            merged[p] = -1
        }
    }
}

/// A bounded, thread-safe memo of word → ids (words repeat a lot in real text).
final class BPECache: @unchecked Sendable {
    private var map: [[UInt8]: [Int32]] = [:]
    private let lock = NSLock()
    private let limit: Int

    init(limit: Int = 50_000) { self.limit = limit }

    func get(_ key: [UInt8]) -> [Int32]? {
        lock.lock()
        defer { lock.unlock() }
        return map[key]
    }

    func set(_ key: [UInt8], _ value: [Int32]) {
        lock.lock()
        defer { lock.unlock() }
        if map.count >= limit { map.removeAll(keepingCapacity: true) }
        map[key] = value
    }
}
