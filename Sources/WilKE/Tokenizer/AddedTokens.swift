/// Added tokens (`<|im_start|>`, `<s>`, `<think>`) found whole in the text before pre-tokenization, as
/// `tokenizers`' added-vocabulary split: leftmost match first, the longest token at that position.
struct AddedTokens: Sendable {
    /// Tokens by their first UTF-8 byte, longest first.
    private var byFirstByte: [[(bytes: [UInt8], id: Int32)]] = Array(repeating: [], count: 256)
    private(set) var ids: Set<Int32> = []

    var isEmpty: Bool { ids.isEmpty }

    mutating func add(_ content: String, id: Int32) {
        let bytes = Array(content.utf8)
        guard let first = bytes.first, !ids.contains(id) else { return }
        ids.insert(id)
        byFirstByte[Int(first)].append((bytes, id))
        byFirstByte[Int(first)].sort { $0.bytes.count > $1.bytes.count }
    }

    enum Segment {
        case text(Range<Int>)
        case token(Int32)
    }

    /// Cuts `bytes` into text ranges and added-token ids, in order. Empty text ranges are dropped.
    func split(_ bytes: [UInt8]) -> [Segment] {
        if isEmpty { return bytes.isEmpty ? [] : [.text(0..<bytes.count)] }
        var out: [Segment] = []
        var textStart = 0
        var i = 0
        let n = bytes.count
        outer: while i < n {
            for cand in byFirstByte[Int(bytes[i])] where cand.bytes.count <= n - i {
                var match = true
                for k in 1..<cand.bytes.count where bytes[i + k] != cand.bytes[k] {
                    match = false
                    break
                }
                if match {
                    if textStart < i { out.append(.text(textStart..<i)) }
                    out.append(.token(cand.id))
                    i += cand.bytes.count
                    textStart = i
                    continue outer
                }
            }
            i += 1
        }
        if textStart < n { out.append(.text(textStart..<n)) }
        return out
    }
}
