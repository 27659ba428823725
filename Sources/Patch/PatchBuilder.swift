import Formats

/// Builds a patch step by step while tracking each tensor's current bytes, so that every step's base
/// hash is the previous step's result hash and the base fingerprint records each tensor as first seen.
public struct PatchBuilder {
    public private(set) var architecture: String
    public private(set) var format: String
    public var metadata: [String: String]
    private var fingerprints: [String: TensorFingerprint] = [:]
    private var current: [String: TensorBytes] = [:]
    private var steps: [PatchStep] = []

    public init(architecture: String, format: String, metadata: [String: String] = [:]) {
        self.architecture = architecture
        self.format = format
        self.metadata = metadata
    }

    /// Adds a rank-k step on `tensor` and returns the patched tensor.
    /// - Parameters:
    ///   - base: the tensor's bytes in the model, [rows, cols] logical; only read the first time the
    ///     tensor is seen (later steps continue from the builder's own result).
    ///   - u: [rows, rank] f32; v: [cols, rank] f32 (see `TensorDelta.makeStep`).
    @discardableResult
    public mutating func add(tensor: String, layout: StorageLayout, base: TensorBytes, u: [Float], v: [Float], rank: Int,
                             scale: Float = 1, promoteTo: DType = .f32, edits: [EditRecord] = []) throws -> TensorBytes {
        let input: TensorBytes
        if let c = current[tensor] {
            guard steps.last(where: { $0.tensor == tensor })?.layout == layout else {
                throw PatchError.brokenChain(tensor: tensor, step: steps.count, reason: "layout differs from the earlier step")
            }
            input = c
        } else {
            input = base
            fingerprints[tensor] = TensorFingerprint(name: tensor, dtype: base.dtype, rows: base.rows, cols: base.cols,
                                                     layout: layout, sha256: base.sha256)
        }
        let (step, result) = try TensorDelta.makeStep(tensor: tensor, layout: layout, base: input, u: u, v: v, rank: rank,
                                                      scale: scale, promoteTo: promoteTo, edits: edits)
        steps.append(step)
        current[tensor] = result
        return result
    }

    /// The patch so far.
    public func build() -> Patch {
        Patch(base: BaseFingerprint(architecture: architecture, format: format,
                                    tensors: fingerprints.values.sorted { $0.name < $1.name }),
              steps: steps, metadata: metadata)
    }
}

extension Patch {
    /// Applies every step in order to the named tensors; tensors not in `tensors` that a step needs
    /// raise `tensorNotFound`. Returns the patched tensors (untouched entries are passed through).
    /// - Parameter tensors: name → bytes, each [rows, cols] logical in its step's layout.
    public func apply(to tensors: [String: TensorBytes]) throws -> [String: TensorBytes] {
        var out = tensors
        for step in steps {
            guard let t = out[step.tensor] else { throw PatchError.tensorNotFound(step.tensor) }
            out[step.tensor] = try TensorDelta.apply(step, to: t)
        }
        return out
    }

    /// Undoes every step in reverse order, restoring the original bytes exactly.
    public func revert(from tensors: [String: TensorBytes]) throws -> [String: TensorBytes] {
        var out = tensors
        for step in steps.reversed() {
            guard let t = out[step.tensor] else { throw PatchError.tensorNotFound(step.tensor) }
            out[step.tensor] = try TensorDelta.revert(step, from: t)
        }
        return out
    }

    /// Structural checks shared by encode and decode: sorted unique base tensors, well-formed steps,
    /// and for each tensor a hash chain starting at its base fingerprint.
    public func validate() throws {
        for (a, b) in zip(base.tensors, base.tensors.dropFirst()) where !(a.name < b.name) {
            throw PatchError.invalidManifest("base tensors are not sorted and unique at \(b.name)")
        }
        for t in base.tensors where !Hash.isSHA256Hex(t.sha256) {
            throw PatchError.invalidManifest("base tensor \(t.name) has no sha256")
        }
        for s in steps { try s.checkWellFormed() }
        try Patch.checkChain(base: base.tensors, steps: steps)
        let touched = Set(steps.map(\.tensor))
        for t in base.tensors where !touched.contains(t.name) {
            throw PatchError.invalidManifest("base tensor \(t.name) is not touched by any step")
        }
    }

    /// Each step must read what the previous step on its tensor wrote (or the base fingerprint).
    static func checkChain(base: [TensorFingerprint], steps: [PatchStep]) throws {
        var state: [String: (dtype: DType, rows: Int, cols: Int, layout: StorageLayout, sha: String)] = [:]
        for t in base { state[t.name] = (t.dtype, t.rows, t.cols, t.layout, t.sha256) }
        for (n, s) in steps.enumerated() {
            guard let prev = state[s.tensor] else { throw PatchError.invalidManifest("step \(n) touches \(s.tensor), which the base does not list") }
            func broken(_ why: String) -> PatchError { .brokenChain(tensor: s.tensor, step: n, reason: why) }
            guard prev.dtype == s.dtype else { throw broken("it reads \(s.dtype.name), the tensor is \(prev.dtype.name)") }
            guard prev.rows == s.rows, prev.cols == s.cols else { throw broken("shape [\(s.rows), \(s.cols)] differs") }
            guard prev.layout == s.layout else { throw broken("layout differs") }
            guard prev.sha == s.baseSHA256 else { throw broken("base sha256 \(s.baseSHA256) is not the previous result \(prev.sha)") }
            state[s.tensor] = (s.resultDType, s.rows, s.cols, s.layout, s.resultSHA256)
        }
    }
}
