import Foundation
import Patch

// libFuzzer target for the .wpatch parser. Built with -sanitize=fuzzer and -DWILKE_FUZZ (see
// scripts/fuzz.sh), libFuzzer supplies `main` and calls LLVMFuzzerTestOneInput. Built normally, the
// same executable replays files given as arguments, so a crash found by the fuzzer can be
// reproduced in a plain debug build.

/// Decodes `data`; a patch that decodes must re-encode to a patch with the same content. Anything
/// else must be a thrown `PatchError` — a trap here is a bug.
///
/// Inputs starting with the .wpatch magic go through the whole decoder (zstd, checksum, id). Others
/// are taken as decompressed content after one mode byte and decoded without checking the id:
/// mutations there reach the JSON parser, the manifest and residue checks, which the frame checksum
/// and the SHA-256 id would otherwise shield from almost every mutated input.
func checkOneInput(_ data: UnsafeRawBufferPointer) {
    let decoded: Patch?
    if data.starts(with: PatchFormat.magic) {
        decoded = try? Patch.decode(data, maxContentBytes: 1 << 24)
    } else {
        decoded = try? Patch.decode(content: UnsafeRawBufferPointer(rebasing: data.dropFirst()), verifyingID: false)
    }
    guard let patch = decoded else { return }
    guard let again = try? Patch.decode(try patch.encode()), again == patch, again.id == patch.id else {
        preconditionFailure("a decoded patch did not survive encode → decode")
    }
}

#if WILKE_FUZZ
// SwiftPM links every executable with `main` aliased to `PatchFuzz_main`, so libFuzzer's own `main`
// cannot be used; ours hands control to libFuzzer's driver instead (same flags, same behaviour).
@_silgen_name("LLVMFuzzerRunDriver")
func runFuzzerDriver(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
                     _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    checkOneInput(UnsafeRawBufferPointer(start: data, count: data == nil ? 0 : size))
    return 0
}

@main
struct PatchFuzzMain {
    static func main() {
        var argc = CommandLine.argc
        var argv = CommandLine.unsafeArgv
        exit(runFuzzerDriver(&argc, &argv) { data, size in fuzzOneInput(data, size) })
    }
}
#else
@main
struct PatchFuzzReplay {
    static func main() throws {
        if CommandLine.arguments.dropFirst().first == "--bench" { try bench(); return }
        for path in CommandLine.arguments.dropFirst() {
            let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
            bytes.withUnsafeBytes { checkOneInput($0) }
            let outcome: String
            do { _ = try Patch.decode(bytes); outcome = "valid patch" } catch { outcome = "\(error)" }
            print("\(path): \(outcome)")
        }
    }

    /// Times makeStep / apply / revert of a rank-1 step on a 576×1536 F16 tensor (SmolLM2's ffn_down).
    static func bench() throws {
        let (rows, cols) = (576, 1536)
        var state: UInt32 = 1
        func next() -> Float { state = state &* 1_664_525 &+ 1_013_904_223; return Float(Int32(bitPattern: state)) * 0x1p-37 }
        let w = (0..<(rows * cols)).map { _ in Float16(next()).bitPattern }
        let bytes = w.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] }
        let base = TensorBytes(dtype: .f16, rows: rows, cols: cols, bytes: bytes)
        let u = (0..<rows).map { _ in next() }, v = (0..<cols).map { _ in next() }
        let clock = ContinuousClock()
        var made: (step: PatchStep, result: TensorBytes)?
        let tMake = try clock.measure { made = try TensorDelta.makeStep(tensor: "w", layout: .rowMajor, base: base, u: u, v: v, rank: 1) }
        var out: TensorBytes?
        let tApply = try clock.measure { out = try TensorDelta.apply(made!.step, to: base) }
        let tRevert = try clock.measure { out = try TensorDelta.revert(made!.step, from: out!) }
        print("576x1536 F16 rank 1: makeStep \(tMake), apply \(tApply), revert \(tRevert), exact \(out == base), " +
              "residue \(made!.step.residue.count) elements")
    }
}
#endif
