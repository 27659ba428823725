/// The one sanitizer for text that came from a file (tensor names, metadata keys and values, patch
/// subjects and prompts, file bytes echoed in errors) before it reaches a terminal. Checkpoints and
/// patches are shipped between people, so their strings are untrusted: a subject holding `ESC[2J`
/// would clear the screen, a NUL or a lone CR would hide text, a right-to-left override would make a
/// name read differently from what it is, and a 290 KB corrupted key would flood the terminal.
///
/// JSON output does not go through here: JSON escapes control characters itself and must keep the
/// exact strings.
public enum DisplayText {
    /// `text` with every control character escaped (`\x1b`, `\u{202e}`) and, when longer than `limit`
    /// characters, cut with a note of the full length. Newlines are kept only with `keepNewlines`
    /// (multi-line reports assembled by the tool itself).
    public static func escaped(_ text: String, limit: Int? = 240, keepNewlines: Bool = false) -> String {
        var out = ""
        var count = 0
        for scalar in text.unicodeScalars {
            if let limit, count >= limit {
                return out + "… (\(text.utf8.count) bytes)"
            }
            count += 1
            if keepNewlines, scalar == "\n" {
                out.unicodeScalars.append(scalar)
            } else if scalar.value < 0x20 || scalar.value == 0x7F {
                out += "\\x" + hex(scalar.value, width: 2)
            } else if isInvisibleControl(scalar) {
                out += "\\u{" + hex(scalar.value, width: 4) + "}"
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// C1 controls (U+0080–U+009F: 8-bit CSI and friends), bidirectional embeddings, overrides and
    /// isolates (the "Trojan Source" characters), and the BOM / zero-width no-break space.
    static func isInvisibleControl(_ s: Unicode.Scalar) -> Bool {
        switch s.value {
        case 0x80...0x9F, 0x200E, 0x200F, 0x202A...0x202E, 0x2066...0x2069, 0xFEFF: return true
        default: return false
        }
    }

    private static func hex(_ v: UInt32, width: Int) -> String {
        let digits = String(v, radix: 16)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }
}
