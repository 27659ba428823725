import Foundation

/// Building a tokenizer from GGUF `tokenizer.ggml.*` metadata, the way transformers'
/// `AutoTokenizer.from_pretrained(dir, gguf_file:)` does.
extension BPETokenizer {
    /// GGUF token types (`tokenizer.ggml.token_type`).
    enum TokenType {
        static let control: Int32 = 3, userDefined: Int32 = 4, byte: Int32 = 6
    }

    /// - Parameters:
    ///   - ggufTokens: `tokenizer.ggml.tokens`, the vocabulary by id.
    ///   - merges: `tokenizer.ggml.merges` ("left right", best first); byte-level only, ignored for `llama`.
    ///   - tokenTypes: `tokenizer.ggml.token_type`, same length as the tokens. Control tokens become special
    ///     tokens matched whole in the text, user-defined ones plain added tokens.
    ///   - scores: `tokenizer.ggml.scores`, same length; required for `llama`.
    ///   - model: `tokenizer.ggml.model`: "gpt2" (byte-level) or "llama" (SentencePiece style).
    ///   - pre: `tokenizer.ggml.pre`, the byte-level split; nil or "default" is GPT-2's.
    ///   - addBOS: `tokenizer.ggml.add_bos_token`; when absent, true for `llama` and false for `gpt2`.
    ///   - architecture: `general.architecture`. A `llama` vocabulary of `gemma`, `gemma2` or `gemma3` is built
    ///     as transformers' `gemma_tokenizer` does (see `SentencePieceStyle.gemma`).
    public convenience init(ggufTokens: [String], merges: [String], tokenTypes: [Int32]?, scores: [Float]?, model: String,
                            pre: String?, bosID: Int?, eosID: Int?, padID: Int?, addBOS: Bool?,
                            architecture: String? = nil) throws {
        let n = ggufTokens.count
        if let tokenTypes, tokenTypes.count != n {
            throw WilKEError.tokenizerArrayMismatch("\(n) tokens but \(tokenTypes.count) token types")
        }
        if let scores, scores.count != n {
            throw WilKEError.tokenizerArrayMismatch("\(n) tokens but \(scores.count) scores")
        }
        switch model {
        case "gpt2":
            guard let split = PreTokenizer(ggufPre: pre) else {
                throw WilKEError.unsupportedTokenizer("pre-tokenizer `\(pre ?? "")`")
            }
            // transformers re-spells a token not written in the byte alphabet (a GGUF may store raw text).
            let spelled = ggufTokens.map { ByteLevel.isSpelled($0) ? $0 : ByteLevel.spell($0.utf8) }
            var added = AddedTokens()
            for (id, type) in (tokenTypes ?? []).enumerated()
            where (type == TokenType.control || type == TokenType.userDefined) && ByteLevel.isSpelled(ggufTokens[id]) {
                added.add(ggufTokens[id], id: Int32(id))
            }
            try self.init(byteLevel: spelled, stored: ggufTokens, merges: merges, added: added, pre: split,
                          bosID: bosID, eosID: eosID, padID: padID, addsBOS: addBOS ?? false)
        case "llama":
            guard let scores else { throw WilKEError.unsupportedTokenizer("a `llama` vocabulary without scores") }
            let gemma = architecture.map { ["gemma", "gemma2", "gemma3"].contains($0) } ?? false
            // Gemma's GGUF stores its tokens of 2-31 spaces as real spaces, while the text reaches BPE with
            // spaces as ▁; respelled, they merge. Its scores do not follow its merge order, its file order does
            // (transformers' `gemma_tokenizer`; 262,144 distinct positions are exact in a Float).
            let vocabulary = gemma ? ggufTokens.map(Self.spaceRunAsMetaspace) : ggufTokens
            let ranking = gemma ? (0..<n).map { -Float($0) } : scores
            // A user-defined token is added only when its spelling is in the vocabulary that BPE sees, so the
            // respelled space runs are not matched whole (transformers' `add_gguf_special_tokens`).
            let known = Set(vocabulary.map { Array($0.utf8) })
            var added = AddedTokens()
            for (id, type) in (tokenTypes ?? []).enumerated()
            where type == TokenType.control || (type == TokenType.userDefined && known.contains(Array(ggufTokens[id].utf8))) {
                added.add(ggufTokens[id], id: Int32(id))
            }
            try self.init(sentencePiece: vocabulary, stored: ggufTokens, scores: ranking, style: gemma ? .gemma : .llama,
                          added: added, bosID: bosID, eosID: eosID, padID: padID, addsBOS: addBOS ?? true)
        default:
            throw WilKEError.unsupportedTokenizer("tokenizer model `\(model)`")
        }
    }

    /// Byte-level BPE over `spelled` (the vocabulary in the byte alphabet); `stored` is what `piece(_:)` returns.
    convenience init(byteLevel spelled: [String], stored: [String], merges mergeList: [String], added: AddedTokens,
                     pre: PreTokenizer, bosID: Int?, eosID: Int?, padID: Int?, addsBOS: Bool) throws {
        var vocab = [String: Int32](minimumCapacity: spelled.count)
        for (id, p) in spelled.enumerated() where vocab[p] == nil { vocab[p] = Int32(id) }
        var merges = BPEMerges()
        for m in mergeList {
            let u = m.utf8
            guard let cut = u.firstIndex(of: 0x20), !u[u.index(after: cut)...].contains(0x20),
                  let left = String(u[..<cut]), let right = String(u[u.index(after: cut)...]),
                  let a = vocab[left], let b = vocab[right], let ab = vocab[left + right] else {
                throw WilKEError.invalidMerge(m)
            }
            merges.add(a, b, merged: ab)
        }
        let byteIDs = (0..<256).map { vocab[String(ByteLevel.characters[$0])] ?? -1 }
        let decoded = spelled.map { p -> [UInt8] in
            var out: [UInt8] = []
            ByteLevel.unspell(p, into: &out)
            return out
        }
        try self.init(kind: .byteLevel(pre), pieces: stored, merges: merges, added: added, byteIDs: byteIDs,
                      characterIDs: [:], decodedBytes: decoded, isByteToken: [], unknownID: nil,
                      bosID: bosID, eosID: eosID, padID: padID, addsBOS: addsBOS)
    }

    /// SentencePiece-style BPE over `tokens` (as BPE sees them; `stored` is what `piece(_:)` returns). A llama
    /// GGUF has no merges: like transformers' `generate_merges`, every split of a piece into two vocabulary
    /// pieces is a merge, ranked by the piece's score (best first), then by longer left part, longer right
    /// part, and the ids of the parts.
    ///
    /// Pieces are keyed by their UTF-8 bytes, not by `String`: Swift's `String` equality is canonical
    /// equivalence, and Gemma's vocabulary holds 434 groups of pieces that differ only in normalization
    /// (Bengali য় as U+09DF and as U+09AF U+09BC), each with its own id. A duplicated piece keeps its last id,
    /// as both transformers' `{token: id}` dict and llama.cpp's `token_to_id` do.
    convenience init(sentencePiece tokens: [String], stored: [String]? = nil, scores: [Float], style: SentencePieceStyle,
                     added: AddedTokens, bosID: Int?, eosID: Int?, padID: Int?, addsBOS: Bool) throws {
        let spelled = tokens.map { Array($0.utf8) }
        var vocab = [[UInt8]: Int32](minimumCapacity: tokens.count)
        for (id, p) in spelled.enumerated() { vocab[p] = Int32(id) }
        struct Candidate { var left: Int32, right: Int32, merged: Int32, score: Float, leftLength: Int, rightLength: Int, order: Int }
        var candidates: [Candidate] = []
        var seen = Set<[UInt8]>()
        for (id, p) in tokens.enumerated() where seen.insert(spelled[id]).inserted {
            let scalars = Array(p.unicodeScalars)
            guard scalars.count > 1, let merged = vocab[spelled[id]] else { continue }
            var local: [Candidate] = []
            var cutByte = 0
            for cut in 1..<scalars.count {
                cutByte += UTF8.width(scalars[cut - 1])
                if let a = vocab[Array(spelled[id][..<cutByte])], let b = vocab[Array(spelled[id][cutByte...])] {
                    local.append(Candidate(left: a, right: b, merged: merged, score: scores[Int(merged)],
                                           leftLength: cut, rightLength: scalars.count - cut, order: 0))
                }
            }
            local.sort { ($0.left, $0.right) < ($1.left, $1.right) }
            for var c in local {
                c.order = candidates.count
                candidates.append(c)
            }
        }
        candidates.sort {
            if $0.score != $1.score { return $0.score > $1.score }
            if $0.leftLength != $1.leftLength { return $0.leftLength > $1.leftLength }
            if $0.rightLength != $1.rightLength { return $0.rightLength > $1.rightLength }
            return $0.order < $1.order
        }
        var merges = BPEMerges()
        for c in candidates { merges.add(c.left, c.right, merged: c.merged) }

        var byteIDs = [Int32](repeating: -1, count: 256)
        var isByte = [Bool](repeating: false, count: tokens.count)
        var characterIDs: [Unicode.Scalar: Int32] = [:]
        var decoded: [[UInt8]] = []
        decoded.reserveCapacity(tokens.count)
        let space: Unicode.Scalar = "\u{2581}"
        for (id, p) in tokens.enumerated() {
            let last = vocab[spelled[id]] == Int32(id)
            if let b = Self.byteToken(p) {
                if last { byteIDs[Int(b)] = Int32(id) }
                isByte[id] = true
                decoded.append([b])
                continue
            }
            let scalars = p.unicodeScalars
            if scalars.count == 1, let u = scalars.first, last { characterIDs[u] = Int32(id) }
            var bytes: [UInt8] = []
            for u in scalars { bytes.append(contentsOf: u == space ? [0x20] : Array(String(u).utf8)) }
            decoded.append(bytes)
        }
        try self.init(kind: .sentencePiece(style), pieces: stored ?? tokens, merges: merges, added: added, byteIDs: byteIDs,
                      characterIDs: characterIDs, decodedBytes: decoded, isByteToken: isByte,
                      unknownID: vocab[Array("<unk>".utf8)], bosID: bosID, eosID: eosID, padID: padID, addsBOS: addsBOS)
    }

    /// A whitespace-only piece holding a space ("   ", as Gemma's GGUF stores its space runs) as one ▁ per
    /// character, transformers' `" " in t and not t.strip()` (Python's whitespace includes U+001C-U+001F).
    static func spaceRunAsMetaspace(_ p: String) -> String {
        let scalars = p.unicodeScalars
        guard scalars.contains(" "),
              scalars.allSatisfy({ $0.properties.isWhitespace || (0x1C...0x1F).contains($0.value) }) else { return p }
        return String(repeating: "\u{2581}", count: scalars.count)
    }

    /// The byte of a `<0xXX>` token.
    static func byteToken(_ p: String) -> UInt8? {
        let u = Array(p.utf8)
        guard u.count == 6, u[0] == 0x3C, u[1] == 0x30, u[2] == 0x78, u[5] == 0x3E else { return nil }
        return UInt8(String(decoding: u[3...4], as: UTF8.self), radix: 16)
    }
}
