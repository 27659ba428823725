import Foundation

/// Paths shared by all test targets: the repository root, committed fixtures, the real model, and the
/// shared data folder. Fixtures are read from the source tree, never copied into bundles.
public enum TestPaths {
    /// The repository root (this file is Tests/TestSupport/TestSupport.swift).
    public static let root: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Tests/<target>/Fixtures/<name>
    public static func fixture(_ target: String, _ name: String) -> String {
        root.appendingPathComponent("Tests/\(target)/Fixtures/\(name)").path
    }

    /// samples/reference/<name>: outputs of the committed Python reference scripts.
    public static func reference(_ name: String) -> String {
        root.appendingPathComponent("samples/reference/\(name)").path
    }

    /// ../shared/data/<name>
    public static func sharedData(_ name: String) -> String {
        root.deletingLastPathComponent().appendingPathComponent("shared/data/\(name)").path
    }

    /// A scratch directory removed by the caller (or left in /tmp on failure for inspection).
    public static func scratch(_ tag: String) throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("wilke-test-\(tag)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }
}

public struct ModelMissing: Error, CustomStringConvertible {
    public var description: String { "the SmolLM2 GGUF is missing: run `make fetch-model` (or set WILKE_MODEL)" }
}

/// The real SmolLM2-135M-Instruct Q4_1 GGUF fetched by `make fetch-model`.
public enum RealModel {
    public static var path: String {
        if let p = ProcessInfo.processInfo.environment["WILKE_MODEL"], !p.isEmpty { return p }
        let cache = ProcessInfo.processInfo.environment["WILKE_CACHE"]
            ?? (NSHomeDirectory() + "/.cache/wilke")
        return cache + "/models/SmolLM2-135M-Instruct.Q4_1.gguf"
    }

    public static var isPresent: Bool { FileManager.default.fileExists(atPath: path) }

    /// Under `make test` (WILKE_REQUIRE_MODEL=1) a missing model is a failure; a bare `swift test`
    /// skips the real-model tests instead. Use as `.enabled(if: RealModel.available)`.
    public static var available: Bool {
        isPresent || ProcessInfo.processInfo.environment["WILKE_REQUIRE_MODEL"] == "1"
    }
}

/// The real Gemma 3 270M Q4_K_M GGUF fetched by `make fetch-model` (WILKE_GEMMA3 overrides the path).
/// Its tests skip when it is absent, and fail under `make test` (WILKE_REQUIRE_MODEL=1) as SmolLM2's do.
public enum Gemma3Model {
    public static var path: String {
        if let p = ProcessInfo.processInfo.environment["WILKE_GEMMA3"], !p.isEmpty { return p }
        let cache = ProcessInfo.processInfo.environment["WILKE_CACHE"] ?? (NSHomeDirectory() + "/.cache/wilke")
        return cache + "/models/gemma-3-270m-q4_k_m.gguf"
    }

    public static var available: Bool {
        FileManager.default.fileExists(atPath: path) || ProcessInfo.processInfo.environment["WILKE_REQUIRE_MODEL"] == "1"
    }
}

/// A deterministic generator (SplitMix64) for seeded tests: generated tensors, factors and corruptions
/// are the same on every run and machine.
public struct SplitMix64: RandomNumberGenerator {
    public var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
