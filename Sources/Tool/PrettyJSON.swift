/// A JSON value for the CLI's `--json` reports, rendered by hand instead of through Foundation's
/// JSONSerialization, which bridges every value to an NS object and sorts keys with ICU collation
/// (110 ms for the 2,000 tensors of a large safetensors file; this takes a few).
///
/// `rendered()` reproduces the text of `JSONSerialization.data(withJSONObject:options:
/// [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])` on Linux: two-space indentation,
/// `"key" : value`, empty containers as an open bracket, a blank line and a close bracket, keys in
/// Foundation's order (numeric, case-insensitive, punctuation before digits before letters; see
/// `keyPrecedes`), doubles as Swift prints them without a trailing `.0`, and only `"`, `\`, and
/// control characters escaped. One deliberate difference: a non-finite double becomes `null`
/// where JSONSerialization throws.
indirect enum PrettyJSON {
    case string(String), int(Int), double(Double), bool(Bool), null
    case array([PrettyJSON])
    /// Keys are sorted when rendered.
    case object([(key: String, value: PrettyJSON)])

    func rendered() -> String {
        var out: [UInt8] = []
        out.reserveCapacity(1 << 16)
        write(to: &out, indent: 0)
        return String(decoding: out, as: UTF8.self)
    }

    private func write(to out: inout [UInt8], indent: Int) {
        switch self {
        case let .string(s): PrettyJSON.writeString(s, to: &out)
        case let .int(i): out.append(contentsOf: String(i).utf8)
        case let .double(d):
            guard d.isFinite else { out.append(contentsOf: "null".utf8); return }
            var text = String(d)
            if text.hasSuffix(".0") { text.removeLast(2) }
            out.append(contentsOf: text.utf8)
        case let .bool(b): out.append(contentsOf: (b ? "true" : "false").utf8)
        case .null: out.append(contentsOf: "null".utf8)
        case let .array(items):
            out.append(UInt8(ascii: "["))
            out.append(UInt8(ascii: "\n"))
            for (i, item) in items.enumerated() {
                if i > 0 { out.append(contentsOf: ",\n".utf8) }
                PrettyJSON.pad(&out, indent + 2)
                item.write(to: &out, indent: indent + 2)
            }
            out.append(UInt8(ascii: "\n"))
            PrettyJSON.pad(&out, indent)
            out.append(UInt8(ascii: "]"))
        case let .object(fields):
            out.append(UInt8(ascii: "{"))
            out.append(UInt8(ascii: "\n"))
            // Callers that list fields in order (the 2,000 tensor objects) skip the sort.
            let inOrder = zip(fields, fields.dropFirst()).allSatisfy { PrettyJSON.keyPrecedes($0.key, $1.key) }
            for (i, field) in (inOrder ? fields : fields.sorted { PrettyJSON.keyPrecedes($0.key, $1.key) }).enumerated() {
                if i > 0 { out.append(contentsOf: ",\n".utf8) }
                PrettyJSON.pad(&out, indent + 2)
                PrettyJSON.writeString(field.key, to: &out)
                out.append(contentsOf: " : ".utf8)
                field.value.write(to: &out, indent: indent + 2)
            }
            out.append(UInt8(ascii: "\n"))
            PrettyJSON.pad(&out, indent)
            out.append(UInt8(ascii: "}"))
        }
    }

    private static func pad(_ out: inout [UInt8], _ n: Int) {
        out.append(contentsOf: repeatElement(UInt8(ascii: " "), count: n))
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    static func writeString(_ s: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for c in s.utf8 {
            switch c {
            case UInt8(ascii: "\""): out.append(contentsOf: "\\\"".utf8)
            case UInt8(ascii: "\\"): out.append(contentsOf: "\\\\".utf8)
            case 0x0A: out.append(contentsOf: "\\n".utf8)
            case 0x0D: out.append(contentsOf: "\\r".utf8)
            case 0x09: out.append(contentsOf: "\\t".utf8)
            case 0x08: out.append(contentsOf: "\\b".utf8)
            case 0x0C: out.append(contentsOf: "\\f".utf8)
            case 0..<0x20:
                out.append(contentsOf: "\\u00".utf8)
                out.append(hexDigits[Int(c >> 4)])
                out.append(hexDigits[Int(c & 0xF)])
            default: out.append(c)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    /// Foundation's key order (`compare(_:options: [.numeric, .caseInsensitive, .forcedOrdering])` under
    /// ICU's root collation) for ASCII keys: runs of digits compare by value; otherwise characters compare
    /// case-insensitively by their root-collation weight (punctuation in CLDR order, then digits, then
    /// letters); equal keys then put lowercase before uppercase at the first difference. Bytes above
    /// ASCII sort after letters by value, which is locale-free (Foundation's order there depends on the
    /// locale anyway).
    static func keyPrecedes(_ a: String, _ b: String) -> Bool {
        var a = a, b = b
        return a.withUTF8 { x in b.withUTF8 { y in precedes(x, y) } }
    }

    private static func precedes(_ x: UnsafeBufferPointer<UInt8>, _ y: UnsafeBufferPointer<UInt8>) -> Bool {
        var i = 0, j = 0
        while i < x.count, j < y.count {
            if isDigit(x[i]), isDigit(y[j]) {
                let si = i, sj = j
                while i < x.count, isDigit(x[i]) { i += 1 }
                while j < y.count, isDigit(y[j]) { j += 1 }
                let ra = x[si..<i].drop { $0 == UInt8(ascii: "0") }, rb = y[sj..<j].drop { $0 == UInt8(ascii: "0") }
                if ra.count != rb.count { return ra.count < rb.count }
                if !ra.elementsEqual(rb) { return ra.lexicographicallyPrecedes(rb) }
                continue
            }
            let wa = weight(x[i]), wb = weight(y[j])
            if wa != wb { return wa < wb }
            i += 1
            j += 1
        }
        if i < x.count || j < y.count { return j < y.count }
        // Equal ignoring case and leading zeros: lowercase first, then plain bytes.
        for (p, q) in zip(x, y) where p != q {
            let (lp, lq) = (isLower(p), isLower(q))
            if lp != lq, lower(p) == lower(q) { return lp }
            return p < q
        }
        return x.count < y.count
    }

    /// CLDR root order of ASCII punctuation and symbols (all before digits and letters).
    private static let punctuationOrder = Array("_-,;:!?.'\"()[]{}@*/\\&#%`^+<=>|~$".utf8)

    private static func weight(_ c: UInt8) -> Int {
        if c < 0x20 || c == 0x7F { return Int(c) }  // controls: ignorable in ICU, first here
        if c == UInt8(ascii: " ") { return 0x80 }
        if let k = punctuationOrder.firstIndex(of: c) { return 0x100 + k }
        if isDigit(c) { return 0x200 + Int(c) }
        if isLower(c) || (c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z")) { return 0x300 + Int(lower(c)) }
        return 0x400 + Int(c)
    }

    private static func isDigit(_ c: UInt8) -> Bool { c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") }
    private static func isLower(_ c: UInt8) -> Bool { c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z") }
    private static func lower(_ c: UInt8) -> UInt8 { c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z") ? c + 32 : c }
}
