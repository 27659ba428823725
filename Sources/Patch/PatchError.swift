/// One error type for the Patch module; a case per failure, described in one lowercase sentence.
public enum PatchError: Error, Equatable, CustomStringConvertible {
    case zstd(String)

    public var description: String {
        switch self {
        case let .zstd(reason): return "zstd: \(reason)"
        }
    }
}
