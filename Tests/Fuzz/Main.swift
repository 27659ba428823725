import Foundation

// libFuzzer targets for every parser of untrusted input (issue #16), in one executable. Built with
// -sanitize=fuzzer and -DWILKE_FUZZ (scripts/fuzz.sh), the target named by $WILKE_FUZZ_TARGET gets
// libFuzzer's inputs. Built normally, `wilke-fuzz TARGET FILE…` replays inputs through the same
// function, so a crash found by the fuzzer reproduces in a plain debug build.
//
// A target calls the parser on the bytes and checks what must hold for any input: a thrown error is
// fine, a trap or a broken invariant (preconditionFailure) is a bug.

/// The targets by name, as `make fuzz FUZZ_TARGET=…` spells them.
let fuzzTargets: [String: @Sendable (UnsafeRawBufferPointer) -> Void] = [
    "patch": fuzzPatch,
    "gguf": fuzzGGUF,
    "safetensors": fuzzSafetensors,
    "tokenizer": fuzzTokenizerJSON,
    "config": fuzzConfigJSON,
    "requests": fuzzRequests,
    "apply": fuzzApply,
]

#if WILKE_FUZZ
// SwiftPM links every executable with `main` aliased to `<Target>_main`, so libFuzzer's own `main`
// cannot be used; ours hands control to libFuzzer's driver instead (same flags, same behaviour).
@_silgen_name("LLVMFuzzerRunDriver")
func runFuzzerDriver(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
                     _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

nonisolated(unsafe) var selectedTarget: (UnsafeRawBufferPointer) -> Void = { _ in }

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    selectedTarget(UnsafeRawBufferPointer(start: data, count: data == nil ? 0 : size))
    return 0
}

@main
struct FuzzMain {
    static func main() {
        let name = ProcessInfo.processInfo.environment["WILKE_FUZZ_TARGET"] ?? ""
        guard let target = fuzzTargets[name] else {
            FileHandle.standardError.write(Data("set WILKE_FUZZ_TARGET to one of: \(fuzzTargets.keys.sorted().joined(separator: ", "))\n".utf8))
            exit(2)
        }
        selectedTarget = target
        // Made before libFuzzer reads the corpus, so the seed checkpoints it writes are read too.
        if name == "apply" { _ = ApplyFixture.shared }
        var argc = CommandLine.argc
        var argv = CommandLine.unsafeArgv
        exit(runFuzzerDriver(&argc, &argv) { data, size in fuzzOneInput(data, size) })
    }
}
#else
@main
struct FuzzReplay {
    static func main() throws {
        let args = Array(CommandLine.arguments.dropFirst())
        if args.first == "--bench" { try PatchBench.bench(); return }
        guard let name = args.first, let target = fuzzTargets[name] else {
            print("usage: wilke-fuzz TARGET FILE…   (targets: \(fuzzTargets.keys.sorted().joined(separator: ", ")))")
            exit(2)
        }
        for path in args.dropFirst() {
            let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
            bytes.withUnsafeBytes { target($0) }
            print("\(path): ok" + (name == "apply" ? ", \(fuzzApplyWrites) applied so far" : ""))
        }
    }
}
#endif
