import Crypto
import Formats

/// SHA-256 as lowercase hex, and the exact float-as-text rule of the manifest (PATCH_FORMAT.md §2.1).
enum Hash {
    static func sha256Hex(_ bytes: [UInt8]) -> String {
        bytes.withUnsafeBytes { sha256Hex($0) }
    }

    static func sha256Hex(_ bytes: UnsafeRawBufferPointer) -> String {
        hex(Array(SHA256.hash(data: bytes)))
    }

    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func isSHA256Hex(_ s: String) -> Bool {
        s.utf8.count == 64 && s.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
    }
}

/// Floats in the manifest are strings: the shortest decimal that reads back to the same f32, as
/// Swift's `Float.description` prints it ("1.0", "0.015", "1e-05", "inf", "-inf", "nan"). NaN
/// payloads are not kept (every NaN prints "nan").
enum FloatText {
    static func format(_ x: Float) -> String { x.isNaN ? "nan" : x.description }

    static func parse(_ s: String) -> Float? {
        guard let x = Float(s), format(x) == s else { return nil }
        return x
    }
}

extension DType {
    /// The dtype spelled as in the manifest ("F32", "BF16", "Q4_K"); nil for unknown names.
    init?(manifestName: String) {
        guard let t = DType.allCases.first(where: { $0.name == manifestName }) else { return nil }
        self = t
    }
}
