import Foundation
import Patch

// Fuzz target `patch`: the .wpatch parser (see Main.swift for how targets are run).

/// Decodes `data`; a patch that decodes must re-encode to a patch with the same content. Anything
/// else must be a thrown `PatchError` — a trap here is a bug.
///
/// Inputs starting with the .wpatch magic go through the whole decoder (zstd, checksum, id). Others
/// are taken as decompressed content after one mode byte and decoded without checking the id:
/// mutations there reach the JSON parser, the manifest and residue checks, which the frame checksum
/// and the SHA-256 id would otherwise shield from almost every mutated input.
func fuzzPatch(_ data: UnsafeRawBufferPointer) {
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


/// `wilke-fuzz --bench`: the tensor arithmetic's speed, printed once (kept here from the old replayer).
enum PatchBench {
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
