import Formats

/// Apply, revert and build one step on one tensor (docs/PATCH_FORMAT.md §4, §5). Pure functions over
/// `TensorBytes`; file-level wiring (which tensor of which checkpoint) is the caller's.
public enum TensorDelta {
    /// Builds the step that adds `scale · U Vᵀ` to `base` and returns it with the patched tensor.
    /// - Parameters:
    ///   - base: the tensor before the step, [rows, cols] logical, bytes in `layout` storage order.
    ///   - u: [rows, rank] row-major f32 (u[i*rank + t]).
    ///   - v: [cols, rank] row-major f32 (v[j*rank + t]).
    ///   - promoteTo: the float type a quantized tensor is written as (f32, f16 or bf16); ignored for
    ///     float tensors, which keep their type.
    ///   - target: the exact bytes the step must produce ([rows, cols], same layout, of the result type);
    ///     where the arithmetic misses them, a forward residue fixes them up. nil: the arithmetic's bytes.
    public static func makeStep(tensor: String, layout: StorageLayout, base: TensorBytes, u: [Float], v: [Float], rank: Int,
                                scale: Float = 1, promoteTo: DType = .f32, edits: [EditRecord] = [],
                                target: TensorBytes? = nil) throws
        -> (step: PatchStep, result: TensorBytes) {
        let resultDType = ElementCodec.floatTypes.contains(base.dtype) ? base.dtype : (target?.dtype ?? promoteTo)
        guard ElementCodec.floatTypes.contains(resultDType) else {
            throw PatchError.invalidFactors("promotion type \(promoteTo.name) is not F32, F16 or BF16")
        }
        var step = PatchStep(tensor: tensor, dtype: base.dtype, rows: base.rows, cols: base.cols, layout: layout, rank: rank,
                             scale: scale, u: u, v: v, baseSHA256: base.sha256, resultSHA256: "", resultDType: resultDType,
                             residue: .empty(base.dtype.isQuantized ? .blocks : .xor), edits: edits)
        try step.checkWellFormed()
        try checkInput(step, base, dtype: step.dtype)
        let factors = DeltaKernel.factors(of: step)
        var x = try ElementCodec.decode(base)
        DeltaKernel.run(&x, factors, .apply)
        var result = TensorBytes(dtype: resultDType, rows: base.rows, cols: base.cols, bytes: ElementCodec.encode(x, as: resultDType))
        if let target {
            try checkInput(step, target, dtype: resultDType)
            step.forwardResidue = Residue.xor(original: target.bytes, reverted: result.bytes, elementBytes: resultDType.blockBytes)
            result = target
        }
        step.resultSHA256 = result.sha256
        // The result's bytes hold its values now; the reverse reads them a panel of rows at a time, so
        // `x` goes first (one tensor-sized buffer fewer: 0.22 GiB on an 8B model's down-projection).
        x = []
        let rebuilt = try reverseArithmetic(step, factors, result)
        step.residue = base.dtype.isQuantized
            ? Residue.blocks(original: base.bytes, rebuilt: rebuilt, blockBytes: base.dtype.blockBytes)
            : Residue.xor(original: base.bytes, reverted: rebuilt, elementBytes: base.dtype.blockBytes)
        return (step, result)
    }

    /// The tensor after `step`. Checks the input's type, shape and SHA-256 against the step, and the
    /// output's SHA-256 against the step's promise.
    /// - Parameter tensor: [rows, cols] logical, of type `step.dtype`, bytes in `step.layout` order.
    /// With `verify: false` (the CLI's `--force`) neither hash is checked: the arithmetic runs on
    /// whatever tensor it is given.
    public static func apply(_ step: PatchStep, to tensor: TensorBytes, verify: Bool = true) throws -> TensorBytes {
        try step.checkWellFormed()
        try checkInput(step, tensor, dtype: step.dtype)
        if verify {
            let found = tensor.sha256
            guard found == step.baseSHA256 else { throw PatchError.baseMismatch(tensor: step.tensor, expected: step.baseSHA256, found: found) }
        }
        var x = try ElementCodec.decode(tensor)
        DeltaKernel.run(&x, DeltaKernel.factors(of: step), .apply)
        var result = TensorBytes(dtype: step.resultDType, rows: step.rows, cols: step.cols, bytes: ElementCodec.encode(x, as: step.resultDType))
        try step.forwardResidue.apply(to: &result.bytes, unitBytes: step.resultDType.blockBytes, tensor: step.tensor)
        guard verify else { return result }
        let got = result.sha256
        guard got == step.resultSHA256 else { throw PatchError.resultMismatch(tensor: step.tensor, expected: step.resultSHA256, found: got) }
        return result
    }

    /// The tensor before `step`, byte for byte (the original quantized blocks for a promoted tensor).
    /// - Parameter tensor: [rows, cols] logical, of type `step.resultDType`, with SHA-256 `step.resultSHA256`.
    public static func revert(_ step: PatchStep, from tensor: TensorBytes, verify: Bool = true) throws -> TensorBytes {
        try step.checkWellFormed()
        try checkInput(step, tensor, dtype: step.resultDType)
        if verify {
            let found = tensor.sha256
            guard found == step.resultSHA256 else { throw PatchError.baseMismatch(tensor: step.tensor, expected: step.resultSHA256, found: found) }
        }
        var bytes = try reverseArithmetic(step, DeltaKernel.factors(of: step), tensor)
        try step.residue.apply(to: &bytes, unitBytes: step.dtype.blockBytes, tensor: step.tensor)
        let out = TensorBytes(dtype: step.dtype, rows: step.rows, cols: step.cols, bytes: bytes)
        guard verify else { return out }
        let got = out.sha256
        guard got == step.baseSHA256 else { throw PatchError.resultMismatch(tensor: step.tensor, expected: step.baseSHA256, found: got) }
        return out
    }

    /// Reverse fma chain, then rounding to the step's input type: float types directly, block types
    /// through the reference quantizer, or all-zero blocks when there is none (the residue then holds
    /// every nonzero original block). Runs over panels of ~4M storage elements (whole storage rows):
    /// each element's chain is independent and a row holds whole quantization blocks, so the bytes are
    /// those of the whole tensor at once, without a tensor-sized f32 buffer.
    private static func reverseArithmetic(_ step: PatchStep, _ factors: DeltaKernel.Factors, _ result: TensorBytes) throws -> [UInt8] {
        let (rows, cols, k) = (factors.storageRows, factors.storageCols, factors.rank)
        let isFloat = ElementCodec.floatTypes.contains(step.dtype)
        guard isFloat || QuantBridge.canQuantize(step.dtype) else {
            return [UInt8](repeating: 0, count: step.dtype.byteCount(elements: rows * cols) ?? 0)
        }
        let width = result.dtype.blockBytes, panel = max(1, (1 << 22) / max(1, cols))
        var out: [UInt8] = []
        out.reserveCapacity(step.dtype.byteCount(elements: rows * cols) ?? 0)
        for r0 in stride(from: 0, to: rows, by: panel) {
            let n = min(panel, rows - r0)
            let slice = TensorBytes(dtype: result.dtype, rows: n, cols: cols,
                                    bytes: Array(result.bytes[(r0 * cols * width) ..< ((r0 + n) * cols * width)]))
            var x = try ElementCodec.decode(slice)
            let part = DeltaKernel.Factors(a: Array(factors.a[(r0 * k) ..< ((r0 + n) * k)]), b: factors.b,
                                           storageRows: n, storageCols: cols, rank: k)
            DeltaKernel.run(&x, part, .revert)
            if isFloat { out += ElementCodec.encode(x, as: step.dtype); continue }
            // A quantizer that refuses a panel would have refused the whole tensor: all-zero blocks then.
            guard let q = QuantBridge.quantize(step.dtype, x) else {
                return [UInt8](repeating: 0, count: step.dtype.byteCount(elements: rows * cols) ?? 0)
            }
            out += q
        }
        return out
    }

    private static func checkInput(_ step: PatchStep, _ t: TensorBytes, dtype: DType) throws {
        guard t.dtype == dtype else { throw PatchError.dtypeMismatch(tensor: step.tensor, expected: dtype.name, found: t.dtype.name) }
        guard t.rows == step.rows, t.cols == step.cols else {
            throw PatchError.shapeMismatch(tensor: step.tensor, expected: "[\(step.rows), \(step.cols)]", found: "[\(t.rows), \(t.cols)]")
        }
        let need = dtype.byteCount(elements: step.rows * step.cols)
        guard need == t.bytes.count else {
            throw PatchError.shapeMismatch(tensor: step.tensor, expected: "\(need ?? -1) bytes", found: "\(t.bytes.count) bytes")
        }
    }
}

extension PatchStep {
    /// Everything about a step that can be checked without the tensor: types, factor sizes, finite
    /// values, and a residue that parses and stays inside the tensor.
    func checkWellFormed() throws {
        guard ElementCodec.canRead(dtype) else { throw PatchError.unsupportedDType(dtype.name) }
        guard ElementCodec.floatTypes.contains(resultDType) else { throw PatchError.unsupportedDType(resultDType.name) }
        if ElementCodec.floatTypes.contains(dtype), resultDType != dtype {
            throw PatchError.invalidManifest("step on \(tensor) changes float type \(dtype.name) to \(resultDType.name)")
        }
        guard let elements = Optional(rows.multipliedReportingOverflow(by: cols)), !elements.overflow,
              let bytes = dtype.byteCount(elements: elements.partialValue), bytes > 0 else {
            throw PatchError.shapeMismatch(tensor: tensor, expected: "whole \(dtype.name) blocks", found: "[\(rows), \(cols)]")
        }
        try layout.checkFits(rows: rows)
        guard (0...4096).contains(rank) else { throw PatchError.invalidFactors("rank \(rank) is outside 0...4096") }
        guard u.count == rows * rank, v.count == cols * rank else {
            throw PatchError.invalidFactors("U has \(u.count) and V \(v.count) values for [\(rows), \(cols)] at rank \(rank)")
        }
        guard scale.isFinite, u.allSatisfy(\.isFinite), v.allSatisfy(\.isFinite) else {
            throw PatchError.invalidFactors("scale and factors must be finite")
        }
        // NaN is the one float the manifest cannot carry exactly (it prints as "nan", payload lost)
        // and it would make a patch unequal to itself.
        guard !edits.contains(where: { $0.scores.values.contains(where: \.isNaN) }) else {
            throw PatchError.invalidManifest("a score of the edit on \(tensor) is nan")
        }
        let kind: Residue.Kind = dtype.isQuantized ? .blocks : .xor
        guard residue.kind == kind else { throw PatchError.invalidResidue(tensor: tensor, reason: "kind \(residue.kind) for type \(dtype.name)") }
        _ = try residue.entries(units: bytes / dtype.blockBytes, unitBytes: dtype.blockBytes, tensor: tensor)
        guard forwardResidue.kind == .xor else { throw PatchError.invalidResidue(tensor: tensor, reason: "forward residue kind \(forwardResidue.kind)") }
        _ = try forwardResidue.entries(units: elements.partialValue, unitBytes: resultDType.blockBytes, tensor: tensor)
    }
}
