import Crypto
import Foundation
import Formats

/// ROME's context templates (`ContextTemplates.sample`) per model, cached on disk like the key
/// statistics: the sampler is seeded, so a model always gets the same templates, and the reference
/// keeps them for the life of its process too. Sampling them is twenty short generations, cheap on
/// SmolLM2 but a minute and a half on the 8B shape (every decode step reads the whole model), so only
/// the first edit of a model pays it (docs/BENCHMARKS.md, Scale).
///
/// File `$WILKE_CACHE/templates/T-<16 hex of the model>-<lengths>-s<seed>.json`:
/// {"format":1,"model":<ModelFingerprint.model + applied patch ids>,"lengths":[[5,10],...],"seed":0,
///  "templates":["{}", ...]}, written atomically; any field that disagrees means sampling again.
public struct TemplateCache: Sendable {
    public let directory: String

    public init(directory: String = TemplateCache.defaultDirectory) { self.directory = directory }

    public static var defaultDirectory: String {
        (StatsCache.defaultDirectory as NSString).deletingLastPathComponent + "/templates"
    }

    /// The identity templates are sampled under: the checkpoint's bytes and the patches applied on top.
    public static func modelIdentity(_ loaded: LoadedModel) -> String {
        ([loaded.checkpointFingerprint.model] + loaded.patchIDs).joined(separator: "+")
    }

    public func path(model: String, lengths: [[Int]], seed: UInt64) -> String {
        let digest = SHA256.hash(data: Data(model.utf8)).prefix(8).map { String(format: "%02x", $0) }.joined()
        let l = lengths.map { $0.map(String.init).joined(separator: "x") }.joined(separator: "_")
        return directory + "/T-\(digest)-\(l)-s\(seed).json"
    }

    /// The cached templates, or nil when there are none (or the file is for something else, or damaged).
    public func load(model: String, lengths: [[Int]], seed: UInt64) -> [String]? {
        guard let data = FileManager.default.contents(atPath: path(model: model, lengths: lengths, seed: seed)),
              let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              json["format"] as? Int == 1, json["model"] as? String == model,
              json["lengths"] as? [[Int]] == lengths, json["seed"] as? String == "\(seed)",
              let templates = json["templates"] as? [String], templates.first == "{}",
              templates.count == ContextTemplates.groupSizes(lengths).reduce(0, +) else { return nil }
        return templates
    }

    public func store(_ templates: [String], model: String, lengths: [[Int]], seed: UInt64) throws {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw WilKEError.io(path: directory, reason: "cannot create the template cache directory")
        }
        let fields: [String: Any] = ["format": 1, "model": model, "lengths": lengths, "seed": "\(seed)", "templates": templates]
        let data = try! JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys, .prettyPrinted])
        try OutputFile.write(Array(data), to: path(model: model, lengths: lengths, seed: seed), overwrite: true)
    }
}
