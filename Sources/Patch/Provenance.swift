import Foundation
import Formats

/// One patch recorded as applied to a checkpoint.
public struct AppliedPatch: Equatable, Sendable {
    public var id: String
    /// One line: what the patch edits (from its edit records), for `wilke log`.
    public var summary: String

    public init(id: String, summary: String) {
        self.id = id
        self.summary = summary
    }
}

/// Where a checkpoint records the patches applied to it, in application order, so provenance travels
/// with the file:
///
/// - GGUF: metadata keys `wilke.patches` (array of patch ids) and `wilke.patch_summaries` (array of
///   strings, same length), appended after the existing keys;
/// - a safetensors file (or a directory with one `model.safetensors`): `__metadata__` entries
///   `wilke.patches` and `wilke.patch_summaries`, each a JSON array of strings;
/// - a sharded directory: the sidecar file `wilke-patches.json` (`{"patches":[{"id":..,"summary":..}]}`),
///   so that only the shards whose tensors change are rewritten.
///
/// When the list becomes empty (everything reverted) the keys / sidecar are removed, which gives back
/// the original header bytes.
public enum Provenance {
    public static let idsKey = "wilke.patches"
    public static let summariesKey = "wilke.patch_summaries"
    public static let sidecarName = "wilke-patches.json"

    /// The patches recorded in `ckpt`, oldest first.
    public static func read(_ ckpt: Checkpoint) throws -> [AppliedPatch] {
        if let g = ckpt.gguf {
            guard let ids = g[idsKey] else { return [] }
            let summaries = g[summariesKey]
            guard case let .array(.string, idValues) = ids else { throw PatchError.invalidProvenance("\(idsKey) is not an array of strings") }
            var sums: [GGUFValue] = []
            if let summaries {
                guard case let .array(.string, s) = summaries else { throw PatchError.invalidProvenance("\(summariesKey) is not an array of strings") }
                sums = s
            }
            return try idValues.enumerated().map { i, v in
                guard case let .string(id) = v, Hash.isSHA256Hex(id.string) else { throw PatchError.invalidProvenance("entry \(i) is not a patch id") }
                var summary = ""
                if i < sums.count, case let .string(s) = sums[i] { summary = s.string }
                return AppliedPatch(id: id.string, summary: summary)
            }
        }
        if isSharded(ckpt) {
            let path = ckpt.path + "/" + sidecarName
            guard FileManager.default.fileExists(atPath: path) else { return [] }
            let file = try MappedFile(path: path)
            let root = try JSONValue.parse(file.bytes)
            guard case let .object(o) = root, case let .array(items)? = o["patches"] else {
                throw PatchError.invalidProvenance("\(sidecarName) has no patches array")
            }
            return try items.map { item in
                guard case let .object(e) = item, case let .string(id)? = e["id"], Hash.isSHA256Hex(id) else {
                    throw PatchError.invalidProvenance("\(sidecarName) has an entry without a patch id")
                }
                if case let .string(s)? = e["summary"] { return AppliedPatch(id: id, summary: s) }
                return AppliedPatch(id: id, summary: "")
            }
        }
        let metadata = ckpt.safetensors.first?.metadata ?? [:]
        guard let idsText = metadata[idsKey] else { return [] }
        let ids = try stringArray(idsText, key: idsKey)
        let sums = try metadata[summariesKey].map { try stringArray($0, key: summariesKey) } ?? []
        return try ids.enumerated().map { i, id in
            guard Hash.isSHA256Hex(id) else { throw PatchError.invalidProvenance("entry \(i) is not a patch id") }
            return AppliedPatch(id: id, summary: i < sums.count ? sums[i] : "")
        }
    }

    /// Whether a checkpoint keeps its provenance in the sidecar (a directory of several shards).
    static func isSharded(_ ckpt: Checkpoint) -> Bool {
        if case let .huggingFaceDirectory(shards) = ckpt.format { return shards > 1 }
        return false
    }

    /// GGUF metadata with the record replaced by `list` (removed when empty).
    static func gguf(_ metadata: [(key: String, value: GGUFValue)], _ list: [AppliedPatch]) -> [(key: String, value: GGUFValue)] {
        var out = metadata.filter { $0.key != idsKey && $0.key != summariesKey }
        if !list.isEmpty {
            out.append((idsKey, .array(.string, list.map { .string(GGUFString($0.id)) })))
            out.append((summariesKey, .array(.string, list.map { .string(GGUFString($0.summary)) })))
        }
        return out
    }

    /// safetensors `__metadata__` with the record replaced by `list` (removed when empty).
    static func safetensors(_ metadata: [String: String], _ list: [AppliedPatch]) -> [String: String] {
        var out = metadata
        out[idsKey] = nil
        out[summariesKey] = nil
        if !list.isEmpty {
            out[idsKey] = String(decoding: JSONValue.array(list.map { .string($0.id) }).canonicalBytes(), as: UTF8.self)
            out[summariesKey] = String(decoding: JSONValue.array(list.map { .string($0.summary) }).canonicalBytes(), as: UTF8.self)
        }
        return out
    }

    /// The sidecar file's bytes for `list`.
    static func sidecar(_ list: [AppliedPatch]) -> [UInt8] {
        JSONValue.object(["patches": .array(list.map { .object(["id": .string($0.id), "summary": .string($0.summary)]) })]).canonicalBytes() + [0x0A]
    }

    private static func stringArray(_ text: String, key: String) throws -> [String] {
        let value = try Array(text.utf8).withUnsafeBytes { try JSONValue.parse($0) }
        guard case let .array(items) = value else { throw PatchError.invalidProvenance("\(key) is not a JSON array") }
        return try items.map {
            guard case let .string(s) = $0 else { throw PatchError.invalidProvenance("\(key) holds a non-string") }
            return s
        }
    }
}

extension Patch {
    /// One line for logs: the facts edited (subject → new target) or, without edit records, the tensors.
    public var summary: String {
        let requests = steps.flatMap(\.edits).flatMap(\.requests)
        if !requests.isEmpty {
            let facts = requests.prefix(3).map { "\($0.subject) → \($0.targetNew)" }.joined(separator: "; ")
            return facts + (requests.count > 3 ? "; … (\(requests.count) facts)" : "")
        }
        let tensors = touchedTensors
        return "\(steps.count) step\(steps.count == 1 ? "" : "s") on " + (tensors.count == 1 ? tensors[0] : "\(tensors.count) tensors")
    }
}
