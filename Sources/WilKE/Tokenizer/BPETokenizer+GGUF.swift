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
    public convenience init(ggufTokens: [String], merges: [String], tokenTypes: [Int32]?, scores: [Float]?, model: String,
                            pre: String?, bosID: Int?, eosID: Int?, padID: Int?, addBOS: Bool?) throws {
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
            var added = AddedTokens()
            for (id, type) in (tokenTypes ?? []).enumerated() where type == TokenType.control || type == TokenType.userDefined {
                added.add(ggufTokens[id], id: Int32(id))
            }
            try self.init(sentencePiece: ggufTokens, scores: scores, added: added,
                          bosID: bosID, eosID: eosID, padID: padID, addsBOS: addBOS ?? true)
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

    /// SentencePiece-style BPE. A llama GGUF has no merges: like transformers' `generate_merges`, every split
    /// of a piece into two vocabulary pieces is a merge, ranked by the piece's score (best first), then by
    /// longer left part, longer right part, and the ids of the parts.
    convenience init(sentencePiece tokens: [String], scores: [Float], added: AddedTokens,
                     bosID: Int?, eosID: Int?, padID: Int?, addsBOS: Bool) throws {
        var vocab = [String: Int32](minimumCapacity: tokens.count)
        for (id, p) in tokens.enumerated() { vocab[p] = Int32(id) }  // the last of duplicates, as a dict literal
        struct Candidate { var left: Int32, right: Int32, merged: Int32, score: Float, leftLength: Int, rightLength: Int, order: Int }
        var candidates: [Candidate] = []
        var seen = Set<String>()
        for (id, p) in tokens.enumerated() where seen.insert(p).inserted {
            let scalars = Array(p.unicodeScalars)
            guard scalars.count > 1 else { continue }
            var local: [Candidate] = []
            for cut in 1..<scalars.count {
                let l = String(String.UnicodeScalarView(scalars[..<cut])), r = String(String.UnicodeScalarView(scalars[cut...]))
                if let a = vocab[l], let b = vocab[r] {
                    local.append(Candidate(left: a, right: b, merged: vocab[p] ?? Int32(id), score: scores[id],
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
        for (id, p) in tokens.enumerated() {
            if let b = Self.byteToken(p) {
                if byteIDs[Int(b)] < 0 || vocab[p] == Int32(id) { byteIDs[Int(b)] = vocab[p] ?? Int32(id) }
                isByte[id] = true
                decoded.append([b])
                continue
            }
            let scalars = p.unicodeScalars
            if scalars.count == 1, let u = scalars.first, vocab[p] == Int32(id) { characterIDs[u] = Int32(id) }
            decoded.append(Array(p.replacingOccurrences(of: "\u{2581}", with: " ").utf8))
        }
        try self.init(kind: .sentencePiece, pieces: tokens, merges: merges, added: added, byteIDs: byteIDs,
                      characterIDs: characterIDs, decodedBytes: decoded, isByteToken: isByte, unknownID: vocab["<unk>"],
                      bosID: bosID, eosID: eosID, padID: padID, addsBOS: addsBOS)
    }

    /// The byte of a `<0xXX>` token.
    static func byteToken(_ p: String) -> UInt8? {
        let u = Array(p.utf8)
        guard u.count == 6, u[0] == 0x3C, u[1] == 0x30, u[2] == 0x78, u[5] == 0x3E else { return nil }
        return UInt8(String(decoding: u[3...4], as: UTF8.self), radix: 16)
    }
}
