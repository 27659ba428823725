/// One error type for the Patch module; a case per failure, described in one lowercase sentence.
public enum PatchError: Error, Equatable, CustomStringConvertible {
    case zstd(String)

    // Container (docs/PATCH_FORMAT.md §1)
    case notAPatch
    case truncated(what: String)
    case unsupportedVersion(major: UInt16, minor: UInt16)

    // Manifest (§2)
    case invalidJSON(offset: Int, reason: String)
    case nonCanonicalManifest
    case invalidManifest(String)
    case idMismatch(stored: String, computed: String)
    case sectionSizeMismatch(expected: Int, found: Int)
    case invalidResidue(tensor: String, reason: String)

    // Tensors and arithmetic (§3, §4)
    case unsupportedDType(String)
    case shapeMismatch(tensor: String, expected: String, found: String)
    case dtypeMismatch(tensor: String, expected: String, found: String)
    case baseMismatch(tensor: String, expected: String, found: String)
    case resultMismatch(tensor: String, expected: String, found: String)
    case invalidFactors(String)

    // Stacking, squashing, comparing (§6)
    case incompatibleBase(String)
    case brokenChain(tensor: String, step: Int, reason: String)
    case tensorNotFound(String)

    // Checkpoints (CheckpointPatching, CheckpointDiff, Provenance)
    case alreadyApplied(id: String)
    case notApplied(id: String)
    case typeChangeInPlace(tensor: String, from: String, to: String)
    case notExtractable(tensor: String, reason: String)
    case invalidProvenance(String)
    case missingTensor(String)

    // LoRA adapters (LoRA/)
    case notExportable(tensor: String, reason: String)
    case invalidAdapter(path: String, reason: String)
    case adapterMismatch(String)

    public var description: String {
        switch self {
        case let .zstd(reason): return "zstd: \(reason)"
        case .notAPatch: return "not a wilke patch (the file does not start with the .wpatch magic)"
        case let .truncated(what): return "the patch is truncated in its \(what)"
        case let .unsupportedVersion(major, minor):
            return "patch format version \(major).\(minor) is not supported by this reader (it reads 1.x)"
        case let .invalidJSON(offset, reason): return "patch manifest is not valid json at byte \(offset): \(reason)"
        case .nonCanonicalManifest: return "patch manifest is not in canonical form (sorted keys, no whitespace)"
        case let .invalidManifest(reason): return "patch manifest is invalid: \(reason)"
        case let .idMismatch(stored, computed): return "patch id \(stored) does not match its content (computed \(computed))"
        case let .sectionSizeMismatch(expected, found):
            return "patch binary sections take \(found) bytes but the manifest describes \(expected)"
        case let .invalidResidue(tensor, reason): return "revert residue of tensor \(tensor) is invalid: \(reason)"
        case let .unsupportedDType(name): return "tensor type \(name) cannot be patched"
        case let .shapeMismatch(tensor, expected, found): return "tensor \(tensor) has shape \(found), the patch expects \(expected)"
        case let .dtypeMismatch(tensor, expected, found): return "tensor \(tensor) has type \(found), the patch expects \(expected)"
        case let .baseMismatch(tensor, expected, found):
            return "tensor \(tensor) is not the one this patch was made for (sha256 \(found), expected \(expected))"
        case let .resultMismatch(tensor, expected, found):
            return "applying to tensor \(tensor) gave sha256 \(found), the patch promises \(expected)"
        case let .invalidFactors(reason): return "invalid edit factors: \(reason)"
        case let .incompatibleBase(reason): return "patches do not share a base model: \(reason)"
        case let .brokenChain(tensor, step, reason): return "step \(step) on tensor \(tensor) does not follow the previous one: \(reason)"
        case let .tensorNotFound(name): return "tensor \(name) is not in the patch"
        case let .alreadyApplied(id): return "patch \(id) is already applied to this checkpoint (pass --force to apply it again)"
        case let .notApplied(id): return "patch \(id) is not recorded as applied to this checkpoint (pass --force to revert anyway)"
        case let .typeChangeInPlace(tensor, from, to):
            return "tensor \(tensor) changes type from \(from) to \(to), which cannot be written in place (use -o)"
        case let .notExtractable(tensor, reason): return "the change of tensor \(tensor) cannot be written as a patch: \(reason)"
        case let .invalidProvenance(reason): return "the checkpoint's record of applied patches is invalid: \(reason)"
        case let .missingTensor(name): return "the checkpoint has no tensor \(name)"
        case let .notExportable(tensor, reason): return "the change of tensor \(tensor) cannot be exported as a LoRA: \(reason)"
        case let .invalidAdapter(path, reason): return "\(path) is not a LoRA adapter wilke can read: \(reason)"
        case let .adapterMismatch(reason): return "the adapter does not fit this base model: \(reason)"
        }
    }
}
