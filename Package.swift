// swift-tools-version:6.0
// wilke: edit facts inside language-model checkpoints and ship each edit as a patch file.
import PackageDescription

let package = Package(
    name: "wilke",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "wilke", targets: ["Tool"]),
        .library(name: "Formats", targets: ["Formats"]),
        .library(name: "Patch", targets: ["Patch"]),
        .library(name: "WilKE", targets: ["WilKE"]),
        // libFuzzer targets for every parser (scripts/fuzz.sh); a corpus replayer when built normally.
        .executable(name: "wilke-fuzz", targets: ["Fuzz"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
    ],
    targets: [
        // System libraries: each is imported by exactly one Swift file of the module that needs it.
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),

        // Checkpoint formats over mmap: safetensors, GGUF, tensor types. Depends only on the OS and SHA-256.
        .target(name: "Formats", dependencies: [.product(name: "Crypto", package: "swift-crypto")]),
        // The .wpatch format and apply / revert / stack / diff.
        .target(name: "Patch", dependencies: ["Formats", "CZstd", .product(name: "Crypto", package: "swift-crypto")]),
        // Tokenizers, the CPU transformer, ROME and WilKE.
        .target(name: "WilKE", dependencies: ["Formats", "Patch", "COpenBLAS", .product(name: "Crypto", package: "swift-crypto")]),
        // The `wilke` executable: one file per verb.
        .executableTarget(
            name: "Tool",
            dependencies: ["Formats", "Patch", "WilKE", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),

        .executableTarget(name: "Fuzz", dependencies: ["Formats", "Patch", "WilKE"], path: "Tests/Fuzz"),

        // Fixtures are read from the source tree (Tests/<Target>/Fixtures) via #filePath, not copied.
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "FormatsTests", dependencies: ["Formats", "TestSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "PatchTests", dependencies: ["Patch", "Formats", "TestSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "WilKETests", dependencies: ["WilKE", "Formats", "Patch", "TestSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "ToolTests", dependencies: ["Tool", "Formats", "Patch", "TestSupport"]),
    ]
)
