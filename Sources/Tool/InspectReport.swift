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

    /// Metadata as (key, short display text, JSON value), in file order for GGUF and sorted by key for
    /// safetensors. Long arrays are summarized from their entry, never decoded (a GGUF vocabulary is
    /// 49k strings), so this costs the same for any file.
    var metadata: [(key: String, text: String, json: PrettyJSON)] {
        if let g = ckpt.gguf {
            return g.entries.map { e in (e.key, InspectReport.display(e, in: g), InspectReport.jsonValue(e, in: g)) }
        }
        return (ckpt.safetensors.first?.metadata ?? [:]).sorted { $0.key < $1.key }.map { ($0.key, $0.value, .string($0.value)) }
    }

    /// Arrays longer than this are shown as `[type × count]` in text, ...
    static let textArrayLimit = 8
    /// ... and as `{"array_of": type, "count": n}` in JSON.
    static let jsonArrayLimit = 16

    static func display(_ e: GGUFMetadataEntry, in g: GGUFFile) -> String {
        if let count = e.arrayCount, let type = e.arrayElementType, count > textArrayLimit { return "[\(type) × \(count)]" }
        return display(g.value(of: e))
    }

    static func display(_ v: GGUFValue) -> String {
        switch v {
        case let .array(type, values):
            if values.count <= textArrayLimit { return "[" + values.map(display).joined(separator: ", ") + "]" }
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

    static func jsonValue(_ e: GGUFMetadataEntry, in g: GGUFFile) -> PrettyJSON {
        if let count = e.arrayCount, let type = e.arrayElementType, count > jsonArrayLimit { return arraySummary(type, count) }
        return jsonValue(g.value(of: e))
    }

    static func jsonValue(_ v: GGUFValue) -> PrettyJSON {
        switch v {
        case let .array(type, values):
            if values.count <= jsonArrayLimit { return .array(values.map(jsonValue)) }
            return arraySummary(type, values.count)
        case let .string(s): return .string(s.string)
        case let .bool(b): return .bool(b)
        default:
            if let i = v.int { return .int(i) }
            if let f = v.float { return .double(f) }
            return .string("\(v)")
        }
    }

    static func arraySummary(_ type: GGUFValueType, _ count: Int) -> PrettyJSON {
        .object([("array_of", .string("\(type)")), ("count", .int(count))])
    }

    /// `ModelConfig` as its `Codable` conformance encodes it: config.json's keys (`ModelConfig.fields`).
    static func jsonValue(_ hp: ModelConfig) -> PrettyJSON {
        .object(hp.fields.map { key, value in
            switch value {
            case let .int(x): return (key, .int(x))
            case let .double(x): return (key, .double(x))
            case let .bool(x): return (key, .bool(x))
            case let .string(x): return (key, .string(x))
            case let .rope(type, theta, scaling):
                var fields: [(key: String, value: PrettyJSON)] = [("rope_theta", .double(theta)), ("rope_type", .string(type))]
                if let s = scaling {
                    fields = [("factor", .double(s.factor)), ("high_freq_factor", .double(s.highFreqFactor)),
                              ("low_freq_factor", .double(s.lowFreqFactor)),
                              ("original_max_position_embeddings", .int(s.originalContextLength))] + fields
                }
                return (key, .object(fields))
            }
        })
    }

    var totalBytes: Int { tensors.reduce(0) { $0 + $1.byteCount } }
    var totalParameters: Int { tensors.reduce(0) { $0 + $1.elementCount } }

    func text() -> String {
        var out: [String] = []
        // Names, keys and values come from the file: each is escaped on its own (DisplayText), so a
        // newline or escape sequence inside one cannot forge or hide lines of the report.
        func shown(_ s: String) -> String { DisplayText.escaped(s) }
        out.append("path:          \(shown(ckpt.path))")
        out.append("format:        \(ckpt.format.name)")
        if let hp = ckpt.config {
            out.append("architecture:  \(shown(hp.architecture.rawValue))")
            var line = "layers \(hp.nLayer), d_model \(hp.dModel), heads \(hp.nHead)/\(hp.nKVHead) kv, d_ff \(hp.dFF), vocab \(hp.vocabSize), context \(hp.contextLength)"
            if hp.nHead * hp.headDim != hp.dModel { line += ", head dim \(hp.headDim)" }
            if let w = hp.slidingWindow { line += ", window \(w)" }
            if let theta = hp.ropeTheta { line += ", rope θ \(theta)" }
            line += ", norm eps \(hp.normEps)" + (hp.tiedHead ? ", tied head" : "")
            out.append("hyper-params:  \(line)")
            do { try hp.checkEngineSupport() } catch { out.append("engine:        cannot run it: \(error)") }
        } else if let arch = ckpt.declaredArchitecture {
            // Readable, but not runnable by this build: say why, so the header report is still whole.
            out.append("architecture:  \(shown(arch))")
            if let e = ckpt.configError { out.append("hyper-params:  none: \(DisplayText.escaped(e.description))") }
        } else {
            out.append("architecture:  unknown (" + (ckpt.configError.map { DisplayText.escaped($0.description) }
                ?? "no config.json beside the file") + ")")
        }
        let md = metadata
        if !md.isEmpty {
            out.append("metadata (\(md.count)):")
            let width = min(44, md.map { shown($0.0).count }.max() ?? 0)
            for (k, v, _) in md { out.append("  " + shown(k).rightPad(width) + "  " + shown(v)) }
        }
        out.append("tensors (\(tensors.count)\(tensors.count == ckpt.tensors.count ? "" : " of \(ckpt.tensors.count)")):")
        let nameWidth = min(48, tensors.map { shown($0.name).count }.max() ?? 4)
        out.append("  " + "name".fit(nameWidth)
                   + "  dtype   shape              offset        bytes")
        for t in tensors {
            let shape = "[" + t.shape.map(String.init).joined(separator: ", ") + "]"
            out.append("  " + shown(t.name).rightPad(nameWidth)
                       + "  " + t.dtype.name.fit(6)
                       + "  " + shape.fit(17)
                       + "  " + String(t.fileRange.lowerBound).leftPad(12) + "  " + String(t.byteCount).leftPad(11))
        }
        out.append(String(format: "total:         %d tensors, %d parameters, %@", tensors.count, totalParameters, formatBytes(totalBytes)))
        return out.joined(separator: "\n")
    }

    func json() -> String {
        var root: [(key: String, value: PrettyJSON)] = [
            ("schema", .string("wilke.inspect/1")),
            ("path", .string(ckpt.path)),
            ("format", .string({ switch ckpt.format {
                case .gguf: return "gguf"
                case .safetensors: return "safetensors"
                case .huggingFaceDirectory: return "hf-directory"
            } }())),
        ]
        // Keys are unique in both formats (GGUF refuses duplicates, safetensors metadata is a dictionary).
        root.append(("metadata", .object(metadata.map { ($0.key, $0.json) })))
        root.append(("tensors", .array(tensors.map { t in
            // Fields in key order, so rendering need not sort them.
            var d: [(key: String, value: PrettyJSON)] = [("bytes", .int(t.byteCount))]
            if let c = t.canonicalName { d.append(("canonical", .string(c))) }
            d.append(("dtype", .string(t.dtype.name)))
            if ckpt.safetensors.count > 1 {
                d.append(("file", .string((ckpt.safetensors[t.fileIndex].file.path as NSString).lastPathComponent)))
            }
            d += [("layout", .string(t.layout.name)), ("name", .string(t.name)),
                  ("offset", .int(t.fileRange.lowerBound)), ("shape", .array(t.shape.map { .int($0) }))]
            return .object(d)
        })))
        root.append(("totals", .object([("tensors", .int(tensors.count)), ("parameters", .int(totalParameters)),
                                        ("bytes", .int(totalBytes))])))
        if case let .gguf(v) = ckpt.format {
            root.append(("version", .int(Int(v))))
            root.append(("alignment", .int(ckpt.gguf?.alignment ?? 32)))
        }
        if let hp = ckpt.config {
            root.append(("architecture", .string(hp.architecture.rawValue)))
            root.append(("hyperparameters", InspectReport.jsonValue(hp)))
        } else {
            if let arch = ckpt.declaredArchitecture { root.append(("architecture", .string(arch))) }
            if let e = ckpt.configError { root.append(("hyperparameters_error", .string(e.description))) }
        }
        return PrettyJSON.object(root).rendered()
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
    /// Spaces appended up to `n` characters; never truncates. (NSString's `padding(toLength:)` bridges:
    /// 2,000 calls of it cost ~10 ms.)
    func rightPad(_ n: Int) -> String { count >= n ? self : self + String(repeating: " ", count: n - count) }
    /// Exactly `n` characters: padded with spaces or cut, as `padding(toLength: n, withPad: " ", startingAt: 0)`.
    func fit(_ n: Int) -> String { count > n ? String(prefix(n)) : rightPad(n) }
}
