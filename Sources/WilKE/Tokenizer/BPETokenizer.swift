/// Byte-pair-encoding tokenizer with Hugging Face's exact ids, in two flavours:
///
/// - byte-level (GPT-2 style, `tokenizer.ggml.model = gpt2` or a ByteLevel `tokenizer.json`): text is cut
///   by the model's pre-tokenizer regex, each piece's UTF-8 bytes are spelled in GPT-2's byte alphabet and
///   merged by rank;
/// - SentencePiece style (`tokenizer.ggml.model = llama`: Llama-2, TinyLlama, Mistral), as transformers
///   builds it from a GGUF: spaces become `▁`, `▁` is prepended to the text, characters are merged by the
///   score of the merged piece, and characters outside the vocabulary fall back to `<0xXX>` byte tokens.
///
/// - SentencePiece style without the dummy prefix (Gemma, Gemma 2, Gemma 3): spaces become `▁` and nothing
///   is prepended.
///
/// Added tokens (`<|im_start|>`, `<s>`) are found whole in the text before either.
public final class BPETokenizer: Tokenizer {
    enum Kind: Sendable {
        case byteLevel(PreTokenizer)
        case sentencePiece(SentencePieceStyle)
    }

    let kind: Kind
    /// The vocabulary as stored (GGUF or tokenizer.json spelling), by id.
    let pieces: [String]
    let merges: BPEMerges
    let added: AddedTokens
    /// Byte-level: id of each byte's character. SentencePiece: id of `<0xXX>`, or -1.
    let byteIDs: [Int32]
    /// SentencePiece: id of each single-character piece.
    let characterIDs: [Unicode.Scalar: Int32]
    /// The bytes each id decodes to (byte tokens give their byte; SentencePiece `▁` gives a space).
    let decodedBytes: [[UInt8]]
    /// SentencePiece: ids of `<0xXX>` tokens, which the decoder gathers into UTF-8 runs.
    let isByteToken: [Bool]
    let unknownID: Int32?
    let cache = BPECache()

    public let bosID: Int?
    public let eosID: Int?
    public let padID: Int?
    public let addsBOS: Bool
    public var vocabularySize: Int { pieces.count }

    init(kind: Kind, pieces: [String], merges: BPEMerges, added: AddedTokens, byteIDs: [Int32],
         characterIDs: [Unicode.Scalar: Int32], decodedBytes: [[UInt8]], isByteToken: [Bool], unknownID: Int32?,
         bosID: Int?, eosID: Int?, padID: Int?, addsBOS: Bool) throws {
        for (name, id) in [("bos", bosID), ("eos", eosID), ("pad", padID)] {
            if let id, id < 0 || id >= pieces.count {
                throw WilKEError.tokenIDOutOfRange(name: name, id: id, vocabularySize: pieces.count)
            }
        }
        self.kind = kind
        self.pieces = pieces
        self.merges = merges
        self.added = added
        self.byteIDs = byteIDs
        self.characterIDs = characterIDs
        self.decodedBytes = decodedBytes
        self.isByteToken = isByteToken
        self.unknownID = unknownID
        self.bosID = bosID
        self.eosID = eosID
        self.padID = padID
        self.addsBOS = addsBOS && bosID != nil
    }

    /// The pre-tokenizer of a byte-level tokenizer; nil for SentencePiece.
    public var preTokenizer: PreTokenizer? {
        if case .byteLevel(let p) = kind { return p }
        return nil
    }

    public func piece(_ id: Int) -> String { id >= 0 && id < pieces.count ? pieces[id] : "" }

    public func encode(_ text: String, addSpecial: Bool) -> [Int] {
        var out: [Int] = []
        if addSpecial && addsBOS, let bos = bosID { out.append(bos) }
        let bytes = Array(text.utf8)
        for segment in added.split(bytes) {
            switch segment {
            case .token(let id): out.append(Int(id))
            case .text(let r):
                switch kind {
                case .byteLevel(let pre): encodeByteLevel(bytes, r, pre, &out)
                case .sentencePiece(let style): encodeSentencePiece(bytes, r, style, &out)
                }
            }
        }
        return out
    }

    private func encodeByteLevel(_ bytes: [UInt8], _ r: Range<Int>, _ pre: PreTokenizer, _ out: inout [Int]) {
        let text = ScalarText(String(decoding: bytes[r], as: UTF8.self).unicodeScalars)
        var words: [Range<Int>] = []
        pre.split(text, 0, text.scalars.count, into: &words)
        var symbols: [Int32] = []
        for w in words {
            let word = Array(bytes[(r.lowerBound + text.utf8Offsets[w.lowerBound])..<(r.lowerBound + text.utf8Offsets[w.upperBound])])
            if let ids = cache.get(word) {
                for id in ids { out.append(Int(id)) }
                continue
            }
            symbols.removeAll(keepingCapacity: true)
            for b in word where byteIDs[Int(b)] >= 0 { symbols.append(byteIDs[Int(b)]) }
            merges.apply(&symbols)
            cache.set(word, symbols)
            for id in symbols { out.append(Int(id)) }
        }
    }

    /// Metaspace (replacement `▁`, no split) then BPE with byte fallback over the whole segment. With
    /// `prependsSpace` (transformers' LlamaTokenizer, prepend scheme "first") a `▁` goes before text at the
    /// very start of the input that does not already start with a space.
    private func encodeSentencePiece(_ bytes: [UInt8], _ r: Range<Int>, _ style: SentencePieceStyle, _ out: inout [Int]) {
        let space: Unicode.Scalar = "\u{2581}"
        var scalars: [Unicode.Scalar] = []
        for u in String(decoding: bytes[r], as: UTF8.self).unicodeScalars { scalars.append(u == " " ? space : u) }
        if style.prependsSpace && r.lowerBound == 0 && scalars.first != space { scalars.insert(space, at: 0) }
        let key = Array(String(String.UnicodeScalarView(scalars)).utf8)
        if let ids = cache.get(key) {
            for id in ids { out.append(Int(id)) }
            return
        }
        var symbols: [Int32] = []
        var pendingUnknown = false
        for u in scalars {
            if let id = characterIDs[u] {
                symbols.append(id)
                pendingUnknown = false
                continue
            }
            let utf8 = Array(String(u).utf8)
            if utf8.allSatisfy({ byteIDs[Int($0)] >= 0 }) {
                for b in utf8 { symbols.append(byteIDs[Int(b)]) }
                pendingUnknown = false
            } else if let unk = unknownID, !pendingUnknown {
                symbols.append(unk)  // consecutive unknown characters fuse into one `<unk>`
                pendingUnknown = true
            }
        }
        merges.apply(&symbols)
        cache.set(key, symbols)
        for id in symbols { out.append(Int(id)) }
    }

    public func decode(_ ids: [Int]) -> String {
        switch kind {
        case .byteLevel:
            var bytes: [UInt8] = []
            for id in ids where id >= 0 && id < decodedBytes.count { bytes.append(contentsOf: decodedBytes[id]) }
            return String(decoding: bytes, as: UTF8.self)
        case .sentencePiece(let style):
            // Replace ▁ → " ", ByteFallback (a run of byte tokens is UTF-8, or one U+FFFD per byte), Fuse,
            // then (the prepending style only) Strip one leading space.
            var text = ""
            var run: [UInt8] = []
            func flush() {
                guard !run.isEmpty else { return }
                let s = String(decoding: run, as: UTF8.self)
                if Array(s.utf8) == run {
                    text += s
                } else {
                    text += String(repeating: "\u{FFFD}", count: run.count)
                }
                run.removeAll()
            }
            for id in ids where id >= 0 && id < decodedBytes.count {
                if isByteToken[id] {
                    run.append(contentsOf: decodedBytes[id])
                } else {
                    flush()
                    text += String(decoding: decodedBytes[id], as: UTF8.self)
                }
            }
            flush()
            if style.prependsSpace && text.hasPrefix(" ") { text.removeFirst() }
            return text
        }
    }
}

/// How a SentencePiece-style vocabulary treats the start of the text. Llama's adds a dummy-prefix `▁`
/// (SentencePiece's `add_dummy_prefix`) and its decoder strips it again; Gemma's adds none (its GGUF says
/// `tokenizer.ggml.add_space_prefix = false`, transformers' GemmaTokenizer has no prepend and no Strip).
struct SentencePieceStyle: Sendable {
    var prependsSpace: Bool

    static let llama = SentencePieceStyle(prependsSpace: true)
    static let gemma = SentencePieceStyle(prependsSpace: false)
}
