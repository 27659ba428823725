/// The regex splits byte-level BPE vocabularies were trained with, as hand-written scanners.
///
/// Each scanner reproduces oniguruma's leftmost-first alternation and backtracking for one pattern, with
/// `\p{L}`, `\p{N}` from `Unicode.Scalar.Properties.generalCategory` and `\s` from `isWhitespace` (Unicode
/// White_Space, as oniguruma's `\s`). Checked piece by piece against `tokenizers` on the test corpus.
public enum PreTokenizer: String, Sendable, CaseIterable {
    /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
    case gpt2
    /// Every `\p{N}` character isolated first (`Digits(individual_digits=True)`), then the GPT-2 split:
    /// SmolLM2's tokenizer.json and llama.cpp's `smollm` / `starcoder` pre-types.
    case digitsThenGPT2
    /// Llama-3: `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
    case llama3
    /// Qwen2: the Llama-3 pattern with single digits (`\p{N}` instead of `\p{N}{1,3}`).
    case qwen2

    /// The split for a GGUF `tokenizer.ggml.pre` value; nil when it names a split not implemented here.
    public init?(ggufPre: String?) {
        switch ggufPre ?? "default" {
        case "default", "gpt2", "gpt-2", "olmo", "mpt", "jais": self = .gpt2
        case "smollm", "starcoder", "refact", "codeshell", "exaone", "granite": self = .digitsThenGPT2
        case "llama3", "llama-v3", "llama-bpe", "falcon3", "dbrx", "smaug-bpe", "pixtral": self = .llama3
        case "qwen2", "deepseek-r1-qwen", "megrez": self = .qwen2
        default: return nil
        }
    }

    /// Appends the pieces of `text[start..<end]` as scalar index ranges to `out`.
    func split(_ text: ScalarText, _ start: Int, _ end: Int, into out: inout [Range<Int>]) {
        switch self {
        case .gpt2: Self.scanGPT2(text, start, end, &out)
        case .digitsThenGPT2:
            var i = start
            var runStart = start
            while i < end {
                if text.classes[i] & ScalarText.number != 0 {
                    if runStart < i { Self.scanGPT2(text, runStart, i, &out) }
                    out.append(i..<(i + 1))
                    runStart = i + 1
                }
                i += 1
            }
            if runStart < end { Self.scanGPT2(text, runStart, end, &out) }
        case .llama3: Self.scanLlama3(text, start, end, maxDigits: 3, &out)
        case .qwen2: Self.scanLlama3(text, start, end, maxDigits: 1, &out)
        }
    }

    /// Length of a contraction (`'s`, `'re`, …) at `i`, or 0.
    private static func contraction(_ t: ScalarText, _ i: Int, _ end: Int, ignoreCase: Bool) -> Int {
        guard t.scalars[i] == "'", i + 1 < end else { return 0 }
        func lower(_ k: Int) -> UInt32 {
            let v = t.scalars[k].value
            return ignoreCase && v >= 0x41 && v <= 0x5A ? v + 0x20 : v
        }
        switch lower(i + 1) {
        case 0x73, 0x74, 0x6D, 0x64: return 2  // s t m d
        case 0x72, 0x76:  // r v → 're 've
            return i + 2 < end && lower(i + 2) == 0x65 ? 3 : 0
        case 0x6C:  // l → 'll
            return i + 2 < end && lower(i + 2) == 0x6C ? 3 : 0
        default: return 0
        }
    }

    /// End of the run of characters from `i` whose class has any of `mask`.
    @inline(__always)
    private static func run(_ t: ScalarText, _ i: Int, _ end: Int, _ mask: UInt8) -> Int {
        var j = i
        while j < end && t.classes[j] & mask != 0 { j += 1 }
        return j
    }

    /// End of the run from `i` of "other" characters (not letter, number or whitespace).
    @inline(__always)
    private static func otherRun(_ t: ScalarText, _ i: Int, _ end: Int) -> Int {
        var j = i
        while j < end && t.classes[j] & (ScalarText.letter | ScalarText.number | ScalarText.space) == 0 { j += 1 }
        return j
    }

    /// `\s+(?!\S)|\s+` at a whitespace character `i`: the run, less its last character when a non-space follows.
    @inline(__always)
    private static func whitespace(_ t: ScalarText, _ i: Int, _ end: Int) -> Int {
        let j = run(t, i, end, ScalarText.space)
        return j < end && j - i >= 2 ? j - 1 : j
    }

    private static func scanGPT2(_ t: ScalarText, _ start: Int, _ end: Int, _ out: inout [Range<Int>]) {
        let L = ScalarText.letter, N = ScalarText.number, S = ScalarText.space
        var i = start
        while i < end {
            let c = t.classes[i]
            var j: Int
            let k = contraction(t, i, end, ignoreCase: false)
            if k > 0 {
                j = i + k
            } else {
                // ` ?X` where the optional space is U+0020 only.
                let spaced = t.scalars[i] == " " && i + 1 < end
                let head = spaced ? i + 1 : i
                let hc = head < end ? t.classes[head] : 0
                if spaced && hc & S != 0 || !spaced && c & S != 0 {
                    j = whitespace(t, i, end)
                } else if hc & L != 0 {
                    j = run(t, head, end, L)
                } else if hc & N != 0 {
                    j = run(t, head, end, N)
                } else {
                    j = otherRun(t, head, end)
                }
            }
            out.append(i..<j)
            i = j
        }
    }

    private static func scanLlama3(_ t: ScalarText, _ start: Int, _ end: Int, maxDigits: Int, _ out: inout [Range<Int>]) {
        let L = ScalarText.letter, N = ScalarText.number, S = ScalarText.space, NL = ScalarText.newline
        var i = start
        while i < end {
            let c = t.classes[i]
            var j = i
            let k = contraction(t, i, end, ignoreCase: true)
            if k > 0 {
                j = i + k
            } else if c & L != 0 {
                j = run(t, i, end, L)
            } else if c & (NL | L | N) == 0 && i + 1 < end && t.classes[i + 1] & L != 0 {
                // `[^\r\n\p{L}\p{N}]?\p{L}+`: one leading non-letter (space, tab, punctuation) glued to a word.
                j = run(t, i + 1, end, L)
            } else if c & N != 0 {
                j = i + 1
                while j < end && j - i < maxDigits && t.classes[j] & N != 0 { j += 1 }
            } else if let o = otherWithNewlines(t, i, end) {
                j = o
            } else {
                // c is whitespace here. `\s*[\r\n]+`: up to the last newline of the run.
                let r = run(t, i, end, S)
                var last = -1
                for m in i..<r where t.classes[m] & NL != 0 { last = m }
                j = last >= 0 ? last + 1 : whitespace(t, i, end)
            }
            out.append(i..<j)
            i = j
        }
    }

    /// ` ?[^\s\p{L}\p{N}]+[\r\n]*` at `i`, or nil.
    @inline(__always)
    private static func otherWithNewlines(_ t: ScalarText, _ i: Int, _ end: Int) -> Int? {
        let head = t.scalars[i] == " " ? i + 1 : i
        let j = otherRun(t, head, end)
        guard j > head else { return nil }
        return run(t, j, end, ScalarText.newline)
    }
}

/// A text as Unicode scalars with a class byte each and the UTF-8 offset of each scalar.
struct ScalarText {
    static let letter: UInt8 = 1, number: UInt8 = 2, space: UInt8 = 4, newline: UInt8 = 8

    var scalars: [Unicode.Scalar] = []
    var classes: [UInt8] = []
    /// UTF-8 offset of scalar i; `utf8Offsets[count]` is the total length.
    var utf8Offsets: [Int] = []

    init<S: Sequence>(_ s: S) where S.Element == Unicode.Scalar {
        var offset = 0
        for u in s {
            scalars.append(u)
            classes.append(Self.classify(u))
            utf8Offsets.append(offset)
            offset += UTF8.width(u)
        }
        utf8Offsets.append(offset)
    }

    static func classify(_ u: Unicode.Scalar) -> UInt8 {
        let v = u.value
        if v < 0x80 {
            switch v {
            case 0x41...0x5A, 0x61...0x7A: return letter
            case 0x30...0x39: return number
            case 0x0A, 0x0D: return space | newline
            case 0x09, 0x0B, 0x0C, 0x20: return space
            default: return 0
            }
        }
        if u.properties.isWhitespace { return space }
        switch u.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return letter
        case .decimalNumber, .letterNumber, .otherNumber: return number
        default: return 0
        }
    }
}
