import Foundation
import Formats

/// The data behind `wilke inspect`, rendered as text or JSON.
struct InspectReport {
    let ckpt: Checkpoint
    let tensors: [CheckpointTensor]

    init(_ ckpt: Checkpoint, glob: String?) {
        self.ckpt = ckpt
        tensors = ckpt.tensors.filter { t in
            guard let glob else { return true }
            return fnmatch(glob, t.name, 0) == 0 || t.canonicalName.map { fnmatch(glob, $0, 0) == 0 } == true
        }
    }

    /// Metadata as (key, short display text, JSON value). Long arrays are summarized, not dumped.
    var metadata: [(String, String, Any)] {
        if let g = ckpt.gguf {
            return g.metadata.map { kv in (kv.key, InspectReport.display(kv.value), InspectReport.jsonValue(kv.value)) }
        }
        return (ckpt.safetensors.first?.metadata ?? [:]).sorted { $0.key < $1.key }.map { ($0.key, $0.value, $0.value) }
    }

    static func display(_ v: GGUFValue) -> String {
        switch v {
        case let .array(type, values):
            if values.count <= 8 { return "[" + values.map(display).joined(separator: ", ") + "]" }
            return "[\(type) × \(values.count)]"
        case let .string(s):
            let text = s.string.replacingOccurrences(of: "\n", with: "\\n")
            return text.count > 80 ? "\"\(text.prefix(77))...\" (\(s.bytes.count) bytes)" : "\"\(text)\""
        default:
            if let i = v.int { return String(i) }
            if let f = v.float { return String(f) }
            if case let .bool(b) = v { return String(b) }
            return "\(v)"
        }
    }

    static func jsonValue(_ v: GGUFValue) -> Any {
        switch v {
        case let .array(type, values):
            if values.count <= 16 { return values.map(jsonValue) }
            return ["array_of": "\(type)", "count": values.count]
        case let .string(s): return s.string
        case let .bool(b): return b
        default:
            if let i = v.int { return i }
            if let f = v.float { return f }
            return "\(v)"
        }
    }

    var totalBytes: Int { tensors.reduce(0) { $0 + $1.byteCount } }
    var totalParameters: Int { tensors.reduce(0) { $0 + $1.elementCount } }

    func text() -> String {
        var out: [String] = []
        out.append("path:          \(ckpt.path)")
        out.append("format:        \(ckpt.format.name)")
        if let hp = ckpt.hyperparameters {
            out.append("architecture:  \(hp.architecture)")
            var line = "layers \(hp.layers), d_model \(hp.dModel), heads \(hp.heads)/\(hp.kvHeads) kv, d_ff \(hp.dFF), vocab \(hp.vocabSize), context \(hp.contextLength)"
            if let theta = hp.ropeTheta { line += ", rope θ \(theta)" }
            line += ", norm eps \(hp.normEps)" + (hp.tiedEmbeddings ? ", tied head" : "")
            out.append("hyper-params:  \(line)")
        } else {
            out.append("architecture:  unknown (no config.json beside the file)")
        }
        let md = metadata
        if !md.isEmpty {
            out.append("metadata (\(md.count)):")
            let width = min(44, md.map(\.0.count).max() ?? 0)
            for (k, v, _) in md { out.append("  " + k.padding(toLength: max(width, k.count), withPad: " ", startingAt: 0) + "  " + v) }
        }
        out.append("tensors (\(tensors.count)\(tensors.count == ckpt.tensors.count ? "" : " of \(ckpt.tensors.count)")):")
        let nameWidth = min(48, tensors.map(\.name.count).max() ?? 4)
        out.append("  " + "name".padding(toLength: nameWidth, withPad: " ", startingAt: 0)
                   + "  dtype   shape              offset        bytes")
        for t in tensors {
            let shape = "[" + t.shape.map(String.init).joined(separator: ", ") + "]"
            out.append("  " + t.name.padding(toLength: max(nameWidth, t.name.count), withPad: " ", startingAt: 0)
                       + "  " + t.dtype.name.padding(toLength: 6, withPad: " ", startingAt: 0)
                       + "  " + shape.padding(toLength: 17, withPad: " ", startingAt: 0)
                       + "  " + String(t.fileRange.lowerBound).leftPad(12) + "  " + String(t.byteCount).leftPad(11))
        }
        out.append(String(format: "total:         %d tensors, %d parameters, %@", tensors.count, totalParameters, formatBytes(totalBytes)))
        return out.joined(separator: "\n")
    }

    func json() throws -> String {
        var root: [String: Any] = [
            "schema": "wilke.inspect/1",
            "path": ckpt.path,
            "format": { switch ckpt.format {
                case .gguf: return "gguf"
                case .safetensors: return "safetensors"
                case .huggingFaceDirectory: return "hf-directory"
            } }(),
            "metadata": Dictionary(metadata.map { ($0.0, $0.2) }, uniquingKeysWith: { a, _ in a }),
            "tensors": tensors.map { t -> [String: Any] in
                var d: [String: Any] = ["name": t.name, "dtype": t.dtype.name, "shape": t.shape, "offset": t.fileRange.lowerBound,
                                        "bytes": t.byteCount, "layout": t.layout.name]
                if let c = t.canonicalName { d["canonical"] = c }
                if ckpt.safetensors.count > 1 { d["file"] = (ckpt.safetensors[t.fileIndex].file.path as NSString).lastPathComponent }
                return d
            },
            "totals": ["tensors": tensors.count, "parameters": totalParameters, "bytes": totalBytes],
        ]
        if case let .gguf(v) = ckpt.format { root["version"] = Int(v); root["alignment"] = ckpt.gguf?.alignment ?? 32 }
        if let hp = ckpt.hyperparameters {
            let data = try JSONEncoder().encode(hp)
            root["architecture"] = hp.architecture
            root["hyperparameters"] = try JSONSerialization.jsonObject(with: data)
        }
        let data = try JSONSerialization.data(withJSONObject: root, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self)
    }
}

func formatBytes(_ n: Int) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var v = Double(n), i = 0
    while v >= 1024, i < units.count - 1 { v /= 1024; i += 1 }
    return i == 0 ? "\(n) B" : String(format: "%.1f %@", v, units[i])
}

extension String {
    func leftPad(_ n: Int) -> String { count >= n ? self : String(repeating: " ", count: n - count) + self }
}
