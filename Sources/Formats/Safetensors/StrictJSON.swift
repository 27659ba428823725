/// A strict, streaming JSON scanner for the small JSON documents of the safetensors world: the file
/// header and `model.safetensors.index.json`. It is hand-written rather than Foundation's
/// `JSONSerialization` because that keeps only one of two duplicate keys silently, and duplicate tensor
/// names are exactly the parser differential the format warns about (FORMATS.md §1.6). It also accepts
/// precisely the JSON (RFC 8259) that `serde_json::from_str` accepts, reads integers exactly as u64, and
/// never builds a tree: callers walk objects key by key and skip what they do not need.
///
/// The input must already be valid UTF-8 (rule 4 is checked before JSON is parsed).
struct JSONScanner {
    let bytes: UnsafeRawBufferPointer
    private(set) var position: Int

    /// serde_json's default recursion limit; deeper documents are rejected rather than risking the stack.
    static let maxDepth = 128

    init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
        position = 0
    }

    struct Failure: Error, Equatable {
        let message: String
    }

    func failure(_ message: String) -> Failure { Failure(message: "\(message) at byte \(position)") }

    var peek: UInt8? { position < bytes.count ? bytes[position] : nil }

    /// JSON whitespace is exactly space, tab, LF and CR (so a NUL is not whitespace).
    mutating func skipWhitespace() {
        while position < bytes.count {
            switch bytes[position] {
            case 0x20, 0x09, 0x0A, 0x0D: position += 1
            default: return
            }
        }
    }

    mutating func expect(_ byte: UInt8, _ what: String) throws {
        skipWhitespace()
        guard peek == byte else { throw failure(peek == nil ? "unexpected end, expected \(what)" : "expected \(what)") }
        position += 1
    }

    /// After the top-level value only whitespace may follow (serde's "trailing characters").
    mutating func expectEnd() throws {
        skipWhitespace()
        guard position == bytes.count else { throw failure("trailing characters") }
    }

    /// Walks an object, calling `body` once per key with the scanner positioned at the value; `body`
    /// must consume the value.
    mutating func object(_ body: (inout JSONScanner, String) throws -> Void) throws {
        try expect(UInt8(ascii: "{"), "'{'")
        skipWhitespace()
        if peek == UInt8(ascii: "}") {
            position += 1
            return
        }
        while true {
            skipWhitespace()
            guard peek == UInt8(ascii: "\"") else { throw failure("expected a string key") }
            let key = try string()
            try expect(UInt8(ascii: ":"), "':'")
            try body(&self, key)
            skipWhitespace()
            switch peek {
            case UInt8(ascii: ","): position += 1
            case UInt8(ascii: "}"): position += 1; return
            default: throw failure("expected ',' or '}'")
            }
        }
    }

    /// Walks an array, calling `body` once per element with the scanner positioned at it.
    mutating func array(_ body: (inout JSONScanner) throws -> Void) throws {
        try expect(UInt8(ascii: "["), "'['")
        skipWhitespace()
        if peek == UInt8(ascii: "]") {
            position += 1
            return
        }
        while true {
            try body(&self)
            skipWhitespace()
            switch peek {
            case UInt8(ascii: ","): position += 1
            case UInt8(ascii: "]"): position += 1; return
            default: throw failure("expected ',' or ']'")
            }
        }
    }

    /// `null` if it comes next (consumed); otherwise the position is unchanged.
    mutating func consumeNull() -> Bool {
        skipWhitespace()
        return consumeLiteral("null")
    }

    private mutating func consumeLiteral(_ literal: StaticString) -> Bool {
        let n = literal.utf8CodeUnitCount
        guard bytes.count - position >= n else { return false }
        for i in 0..<n where bytes[position + i] != literal.utf8Start[i] { return false }
        position += n
        return true
    }

    /// A JSON string, unescaped.
    mutating func string() throws -> String {
        try expect(UInt8(ascii: "\""), "a string")
        var out: [UInt8] = []
        var runStart = position
        while true {
            guard position < bytes.count else { throw failure("unterminated string") }
            let b = bytes[position]
            if b == UInt8(ascii: "\"") {
                out.append(contentsOf: bytes[runStart..<position])
                position += 1
                return String(decoding: out, as: UTF8.self)
            }
            if b < 0x20 { throw failure("control character in string") }
            if b != UInt8(ascii: "\\") {
                position += 1
                continue
            }
            out.append(contentsOf: bytes[runStart..<position])
            position += 1
            guard let e = peek else { throw failure("unterminated string") }
            position += 1
            switch e {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"): out.append(contentsOf: try unicodeEscape())
            default: throw failure("invalid escape")
            }
            runStart = position
        }
    }

    /// The UTF-8 bytes of a `\uXXXX` escape (the `\u` already consumed), joining a surrogate pair;
    /// lone surrogates are errors, as in serde_json.
    private mutating func unicodeEscape() throws -> [UInt8] {
        let first = try hex4()
        var scalar: UInt32 = first
        if (0xD800...0xDBFF).contains(first) {
            guard consumeLiteral("\\u") else { throw failure("lone leading surrogate in hex escape") }
            let second = try hex4()
            guard (0xDC00...0xDFFF).contains(second) else { throw failure("lone leading surrogate in hex escape") }
            scalar = 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
        } else if (0xDC00...0xDFFF).contains(first) {
            throw failure("lone trailing surrogate in hex escape")
        }
        return Array(String(Character(Unicode.Scalar(scalar)!)).utf8)
    }

    private mutating func hex4() throws -> UInt32 {
        guard bytes.count - position >= 4 else { throw failure("unexpected end of hex escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = bytes[position]
            let d: UInt8
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = c - UInt8(ascii: "A") + 10
            default: throw failure("invalid hex escape")
            }
            v = v << 4 | UInt32(d)
            position += 1
        }
        return v
    }

    /// A non-negative integer that fits in u64 (serde's `usize` on a 64-bit target): no sign, fraction
    /// or exponent, no leading zeros.
    mutating func unsignedInteger() throws -> UInt64 {
        skipWhitespace()
        guard let first = peek, first >= UInt8(ascii: "0"), first <= UInt8(ascii: "9") else {
            throw failure(peek == UInt8(ascii: "-") ? "expected a non-negative integer, found a negative number"
                                                     : "expected a non-negative integer")
        }
        var value: UInt64 = 0
        if first == UInt8(ascii: "0") {
            position += 1
            if let d = peek, d >= UInt8(ascii: "0"), d <= UInt8(ascii: "9") { throw failure("invalid number (leading zero)") }
        } else {
            while let d = peek, d >= UInt8(ascii: "0"), d <= UInt8(ascii: "9") {
                let (m, o1) = value.multipliedReportingOverflow(by: 10)
                let (s, o2) = m.addingReportingOverflow(UInt64(d - UInt8(ascii: "0")))
                guard !o1, !o2 else { throw failure("integer out of range for u64") }
                value = s
                position += 1
            }
        }
        if let c = peek, c == UInt8(ascii: ".") || c == UInt8(ascii: "e") || c == UInt8(ascii: "E") {
            throw failure("expected an integer, found a floating point number")
        }
        return value
    }

    /// Skips any JSON value (extra fields that the reader ignores, index metadata).
    mutating func skipValue(depth: Int = 0) throws {
        guard depth < JSONScanner.maxDepth else { throw failure("recursion limit exceeded") }
        skipWhitespace()
        guard let c = peek else { throw failure("unexpected end, expected a value") }
        switch c {
        case UInt8(ascii: "{"): try object { s, _ in try s.skipValue(depth: depth + 1) }
        case UInt8(ascii: "["): try array { s in try s.skipValue(depth: depth + 1) }
        case UInt8(ascii: "\""): _ = try string()
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): try skipNumber()
        default:
            guard consumeLiteral("true") || consumeLiteral("false") || consumeLiteral("null") else {
                throw failure("expected a value")
            }
        }
    }

    /// RFC 8259 number grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
    private mutating func skipNumber() throws {
        func isDigit(_ b: UInt8?) -> Bool { b.map { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") } ?? false }
        if peek == UInt8(ascii: "-") { position += 1 }
        guard isDigit(peek) else { throw failure("invalid number") }
        if peek == UInt8(ascii: "0") {
            position += 1
            if isDigit(peek) { throw failure("invalid number (leading zero)") }
        } else {
            while isDigit(peek) { position += 1 }
        }
        if peek == UInt8(ascii: ".") {
            position += 1
            guard isDigit(peek) else { throw failure("invalid number") }
            while isDigit(peek) { position += 1 }
        }
        if peek == UInt8(ascii: "e") || peek == UInt8(ascii: "E") {
            position += 1
            if peek == UInt8(ascii: "+") || peek == UInt8(ascii: "-") { position += 1 }
            guard isDigit(peek) else { throw failure("invalid number") }
            while isDigit(peek) { position += 1 }
        }
    }
}

/// JSON text for a string exactly as serde_json writes it: `"` and `\` escaped, the short escapes
/// `\b \f \n \r \t`, other control characters as `\u00xx` (lowercase hex), everything else (including
/// `/`, DEL and non-ASCII) verbatim.
func appendJSONString(_ s: String, to out: inout [UInt8]) {
    let hex: [UInt8] = Array("0123456789abcdef".utf8)
    out.append(UInt8(ascii: "\""))
    for b in s.utf8 {
        switch b {
        case UInt8(ascii: "\""): out += [UInt8(ascii: "\\"), UInt8(ascii: "\"")]
        case UInt8(ascii: "\\"): out += [UInt8(ascii: "\\"), UInt8(ascii: "\\")]
        case 0x08: out += [UInt8(ascii: "\\"), UInt8(ascii: "b")]
        case 0x0C: out += [UInt8(ascii: "\\"), UInt8(ascii: "f")]
        case 0x0A: out += [UInt8(ascii: "\\"), UInt8(ascii: "n")]
        case 0x0D: out += [UInt8(ascii: "\\"), UInt8(ascii: "r")]
        case 0x09: out += [UInt8(ascii: "\\"), UInt8(ascii: "t")]
        case 0..<0x20: out += Array("\\u00".utf8) + [hex[Int(b >> 4)], hex[Int(b & 0xF)]]
        default: out.append(b)
        }
    }
    out.append(UInt8(ascii: "\""))
}
