/// Text ↔ token ids, exactly as the model's Hugging Face tokenizer does it.
public protocol Tokenizer: Sendable {
    /// Number of ids, special tokens included.
    var vocabularySize: Int { get }
    var bosID: Int? { get }
    var eosID: Int? { get }
    /// Whether `encode(_:addSpecial: true)` prepends `bosID` (the model's `add_bos_token`).
    var addsBOS: Bool { get }
    /// Token ids of `text`. Special tokens written in the text (`<|im_start|>`) are always recognised;
    /// `addSpecial` only adds BOS when the model's rule says so.
    func encode(_ text: String, addSpecial: Bool) -> [Int]
    /// The text of `ids` (special tokens included as their text; invalid UTF-8 becomes U+FFFD).
    func decode(_ ids: [Int]) -> String
    /// The raw vocabulary string of `id` (byte-level or ▁ spelling), "" when out of range.
    func piece(_ id: Int) -> String
}

/// GPT-2's reversible byte ↔ character table: printable Latin-1 bytes map to themselves, the other 68
/// bytes to U+0100 upward in byte order, so every byte string is spelled with visible characters.
enum ByteLevel {
    /// byte → character.
    static let characters: [Unicode.Scalar] = {
        var printable = Set<UInt8>()
        for b in UInt8(0x21)...0x7E { printable.insert(b) }
        for b in UInt8(0xA1)...0xAC { printable.insert(b) }
        for b in UInt8(0xAE)...0xFF { printable.insert(b) }
        var table = [Unicode.Scalar](repeating: " ", count: 256)
        var next: UInt32 = 256
        for b in 0..<256 {
            if printable.contains(UInt8(b)) {
                table[b] = Unicode.Scalar(UInt8(b))
            } else {
                table[b] = Unicode.Scalar(next)!
                next += 1
            }
        }
        return table
    }()

    /// character → byte + 1 (0: not in the alphabet), indexed by scalar value; the alphabet ends below U+0144.
    private static let byteTable: [UInt16] = {
        var table = [UInt16](repeating: 0, count: 0x200)
        for (b, c) in characters.enumerated() { table[Int(c.value)] = UInt16(b) + 1 }
        return table
    }()

    /// The byte the alphabet character `c` stands for.
    @inline(__always)
    static func byte(_ c: Unicode.Scalar) -> UInt8? {
        let v = Int(c.value)
        guard v < 0x200 else { return nil }
        let b = byteTable[v]
        return b == 0 ? nil : UInt8(b - 1)
    }

    /// The byte-level spelling of `bytes`.
    static func spell<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
        var s = String.UnicodeScalarView()
        for b in bytes { s.append(characters[Int(b)]) }
        return String(s)
    }

    /// True when every character of `piece` is in the byte alphabet.
    static func isSpelled(_ piece: String) -> Bool {
        piece.unicodeScalars.allSatisfy { byte($0) != nil }
    }

    /// The bytes a byte-level piece stands for; characters outside the alphabet pass through as UTF-8.
    static func unspell(_ piece: String, into out: inout [UInt8]) {
        for c in piece.unicodeScalars {
            if let b = byte(c) { out.append(b) } else { out.append(contentsOf: Array(String(c).utf8)) }
        }
    }
}
