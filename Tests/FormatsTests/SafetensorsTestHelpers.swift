import Foundation
import Testing
import TestSupport
@testable import Formats

/// Crafted safetensors bytes: the 8-byte length (of `json`, unless `length` overrides it), the header,
/// then `data` bytes counting 0, 1, 2, ...
func craftSafetensors(_ json: String, data: Int = 0, length: UInt64? = nil) -> [UInt8] {
    var w = ByteWriter()
    w.write(length ?? UInt64(json.utf8.count))
    w.write(bytes: Array(json.utf8))
    w.write(bytes: (0..<data).map { UInt8(truncatingIfNeeded: $0) })
    return w.bytes
}

/// Writes `bytes` to a fresh temp file and opens it through the public API. The file is unlinked at
/// once; the mapping stays valid.
func openSafetensors(_ bytes: [UInt8]) throws -> SafetensorsFile {
    let path = NSTemporaryDirectory() + "wilke-st-\(UUID().uuidString).safetensors"
    _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
    defer { try? FileManager.default.removeItem(atPath: path) }
    return try SafetensorsFile(path: path)
}

/// The message of an `.invalidHeaderJSON` thrown while opening `bytes`; records an issue otherwise.
func headerJSONError(_ bytes: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) -> String? {
    let error = #expect(throws: FormatError.self, sourceLocation: sourceLocation) { try openSafetensors(bytes) }
    guard case let .invalidHeaderJSON(message)? = error else {
        Issue.record("expected invalidHeaderJSON, got \(String(describing: error))", sourceLocation: sourceLocation)
        return nil
    }
    return message
}

func hexString(_ raw: UnsafeRawBufferPointer) -> String {
    raw.map { String(format: "%02x", $0) }.joined()
}

/// A manifest written by samples/reference/make_safetensors_fixtures.py.
struct SafetensorsManifest {
    struct Tensor { var name: String; var dtype: String; var shape: [Int]; var hex: String }
    var metadata: [String: String]
    var tensors: [Tensor]

    init(path: String) throws {
        let object = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
        metadata = object["metadata"] as! [String: String]
        tensors = (object["tensors"] as! [[String: Any]]).map {
            Tensor(name: $0["name"] as! String, dtype: $0["dtype"] as! String, shape: $0["shape"] as! [Int],
                   hex: $0["hex"] as! String)
        }
    }
}
