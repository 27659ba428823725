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
    /// Words longer than `longWord` symbols go through the heap; both paths give identical results.
    func apply(_ symbols: inout [Int32], longWord: Int = 128) {
        let n = symbols.count
        guard n > 1 else { return }
        if n > longWord { return applyLong(&symbols) }
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

    /// The same merges for long words in O(n log n): symbols in a linked list, candidate pairs in a min-heap
    /// ordered by (rank, position), stale candidates skipped when popped (as `tokenizers`' `Word::merge_all`).
    private func applyLong(_ symbols: inout [Int32]) {
        let n = symbols.count
        var next = Array(1...n)  // n = end
        var prev = Array(-1..<(n - 1))
        var alive = [Bool](repeating: true, count: n)
        var heap = MinHeap()
        func push(_ p: Int) {
            let q = next[p]
            guard q < n, let r = rules[Self.key(symbols[p], symbols[q])] else { return }
            heap.push(rank: r.rank, position: Int32(p), left: symbols[p], right: symbols[q])
        }
        for p in 0..<(n - 1) { push(p) }
        while let top = heap.pop() {
            let p = Int(top.position)
            guard alive[p], next[p] < n else { continue }
            let q = next[p]
            // Skip a candidate made stale by an earlier merge at p or q.
            guard symbols[p] == top.left, symbols[q] == top.right,
                  let r = rules[Self.key(symbols[p], symbols[q])], r.rank == top.rank else { continue }
            symbols[p] = r.merged
            alive[q] = false
            next[p] = next[q]
            if next[q] < n { prev[next[q]] = p }
            if prev[p] >= 0 { push(prev[p]) }
            push(p)
        }
        var out: [Int32] = []
        var p = 0
        while p < n {
            out.append(symbols[p])
            p = next[p]
        }
        symbols = out
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

/// A binary min-heap of merge candidates ordered by rank, then position (leftmost first).
private struct MinHeap {
    struct Entry {
        var rank: Int32, position: Int32, left: Int32, right: Int32
        static func < (a: Entry, b: Entry) -> Bool { a.rank != b.rank ? a.rank < b.rank : a.position < b.position }
    }

    private var items: [Entry] = []

    mutating func push(rank: Int32, position: Int32, left: Int32, right: Int32) {
        items.append(Entry(rank: rank, position: position, left: left, right: right))
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard items[i] < items[parent] else { break }
            items.swapAt(i, parent)
            i = parent
        }
    }

    mutating func pop() -> Entry? {
        guard let top = items.first else { return nil }
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < items.count && items[l] < items[m] { m = l }
                if r < items.count && items[r] < items[m] { m = r }
                if m == i { break }
                items.swapAt(i, m)
                i = m
            }
        }
        return top
    }
}
