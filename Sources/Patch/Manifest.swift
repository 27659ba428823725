import Formats

// Patch <-> manifest JSON (PATCH_FORMAT.md §2.2). The binary area is implied by the manifest: for each
// step in order, U (rows*rank f32), V (cols*rank f32), the residue (residue.bytes bytes), then the
// forward residue (forward_residue.bytes bytes, absent = 0).

extension Patch {
    /// The manifest without its "id" member, and the binary area.
    func manifestWithoutID() -> (manifest: [String: JSONValue], binary: [UInt8]) {
        var binary: [UInt8] = []
        binary.reserveCapacity(steps.reduce(0) { $0 + ($1.u.count + $1.v.count) * 4 + $1.residue.bytes.count })
        for step in steps {
            appendFloats(step.u, to: &binary)
            appendFloats(step.v, to: &binary)
            binary.append(contentsOf: step.residue.bytes)
            binary.append(contentsOf: step.forwardResidue.bytes)
        }
        let manifest: [String: JSONValue] = [
            "base": .object([
                "architecture": .string(base.architecture),
                "format": .string(base.format),
                "tensors": .array(base.tensors.sorted { $0.name < $1.name }.map { t in
                    .object(["name": .string(t.name), "dtype": .string(t.dtype.name), "shape": shapeJSON(t.rows, t.cols),
                             "layout": t.layout.json, "sha256": .string(t.sha256)])
                }),
            ]),
            "metadata": .object(metadata.mapValues { .string($0) }),
            "steps": .array(steps.map(\.json)),
        ]
        return (manifest, binary)
    }

    /// Builds a patch from a parsed manifest and the binary area, checking every field.
    static func from(manifest root: JSONValue, binary: UnsafeRawBufferPointer) throws -> Patch {
        let top = try Fields(root, "manifest")
        let baseFields = try Fields(top.required("base"), "base")
        var tensors: [TensorFingerprint] = []
        for item in try baseFields.array("tensors") {
            let f = try Fields(item, "base tensor")
            let (rows, cols) = try f.shape()
            tensors.append(TensorFingerprint(name: try f.string("name"), dtype: try f.dtype("dtype"), rows: rows, cols: cols,
                                             layout: try StorageLayout(json: f.required("layout"), rows: rows),
                                             sha256: try f.sha256("sha256")))
        }
        let base = BaseFingerprint(architecture: try baseFields.string("architecture"), format: try baseFields.string("format"),
                                   tensors: tensors)
        var metadata: [String: String] = [:]
        for (k, v) in try top.object("metadata") {
            guard case let .string(s) = v else { throw PatchError.invalidManifest("metadata value \(k) is not a string") }
            metadata[k] = s
        }
        var reader = ByteReader(binary)
        var steps: [PatchStep] = []
        for item in try top.array("steps") {
            steps.append(try PatchStep(json: item, binary: &reader))
        }
        guard reader.remaining == 0 else {
            throw PatchError.sectionSizeMismatch(expected: reader.offset, found: binary.count)
        }
        let patch = Patch(base: base, steps: steps, metadata: metadata)
        try patch.validate()
        return patch
    }
}

private func appendFloats(_ xs: [Float], to out: inout [UInt8]) {
    for x in xs { withUnsafeBytes(of: x.bitPattern.littleEndian) { out.append(contentsOf: $0) } }
}

private func shapeJSON(_ rows: Int, _ cols: Int) -> JSONValue { .array([.int(Int64(rows)), .int(Int64(cols))]) }

extension PatchStep {
    var json: JSONValue {
        var o: [String: JSONValue] = [
            "tensor": .string(tensor), "dtype": .string(dtype.name), "shape": shapeJSON(rows, cols), "layout": layout.json,
            "rank": .int(Int64(rank)), "scale": .string(FloatText.format(scale)),
            "base_sha256": .string(baseSHA256), "result_sha256": .string(resultSHA256),
            "result_dtype": .string(resultDType.name),
            "residue": .object(["kind": .string(residue.kind.rawValue), "count": .int(Int64(residue.count)),
                                "bytes": .int(Int64(residue.bytes.count))]),
        ]
        o["edits"] = .array(edits.map(\.json))
        // Only present when non-empty, so steps without one keep the bytes and id they always had.
        if forwardResidue.count > 0 || !forwardResidue.bytes.isEmpty {
            o["forward_residue"] = .object(["kind": .string(forwardResidue.kind.rawValue), "count": .int(Int64(forwardResidue.count)),
                                            "bytes": .int(Int64(forwardResidue.bytes.count))])
        }
        return .object(o)
    }

    init(json: JSONValue, binary: inout ByteReader) throws {
        let f = try Fields(json, "step")
        let (rows, cols) = try f.shape()
        let rank = try f.int("rank")
        guard (0...4096).contains(rank) else { throw PatchError.invalidManifest("rank \(rank) is outside 0...4096") }
        let scaleText = try f.string("scale")
        guard let scale = FloatText.parse(scaleText), scale.isFinite else { throw PatchError.invalidManifest("scale \(scaleText) is not a finite float") }
        let r = try Fields(f.required("residue"), "residue")
        guard let kind = Residue.Kind(rawValue: try r.string("kind")) else { throw PatchError.invalidManifest("unknown residue kind") }
        let residueCount = try r.int("count"), residueBytes = try r.int("bytes")
        let u = try PatchStep.readFloats(&binary, count: rows, times: rank)
        let v = try PatchStep.readFloats(&binary, count: cols, times: rank)
        guard residueBytes <= binary.remaining else { throw PatchError.sectionSizeMismatch(expected: binary.offset + residueBytes, found: binary.buffer.count) }
        let residue = Residue(kind: kind, count: residueCount, bytes: Array(try binary.readBytes(residueBytes)))
        var forward = Residue.empty(.xor)
        if let fr = f.optional("forward_residue") {
            let ff = try Fields(fr, "forward_residue")
            guard let fk = Residue.Kind(rawValue: try ff.string("kind")) else { throw PatchError.invalidManifest("unknown forward residue kind") }
            let n = try ff.int("count"), size = try ff.int("bytes")
            guard n > 0 || size > 0 else { throw PatchError.invalidManifest("an empty forward_residue must be omitted") }
            guard size <= binary.remaining else { throw PatchError.sectionSizeMismatch(expected: binary.offset + size, found: binary.buffer.count) }
            forward = Residue(kind: fk, count: n, bytes: Array(try binary.readBytes(size)))
        }
        self.init(tensor: try f.string("tensor"), dtype: try f.dtype("dtype"), rows: rows, cols: cols,
                  layout: try StorageLayout(json: f.required("layout"), rows: rows), rank: rank, scale: scale, u: u, v: v,
                  baseSHA256: try f.sha256("base_sha256"), resultSHA256: try f.sha256("result_sha256"),
                  resultDType: try f.dtype("result_dtype"), residue: residue,
                  edits: try f.array("edits").map { try EditRecord(json: $0) }, forwardResidue: forward)
    }

    private static func readFloats(_ reader: inout ByteReader, count: Int, times rank: Int) throws -> [Float] {
        let (n, o1) = count.multipliedReportingOverflow(by: rank)
        let (bytes, o2) = n.multipliedReportingOverflow(by: 4)
        guard !o1, !o2, bytes <= reader.remaining else {
            throw PatchError.sectionSizeMismatch(expected: o1 || o2 ? Int.max : reader.offset + bytes, found: reader.buffer.count)
        }
        var out = [Float](repeating: 0, count: n)
        for i in 0..<n { out[i] = try reader.readFloat() }
        return out
    }
}

extension EditRecord {
    var json: JSONValue {
        var o: [String: JSONValue] = [
            "requests": .array(requests.map { r in
                var o: [String: JSONValue] = ["prompt": .string(r.prompt), "subject": .string(r.subject), "target_new": .string(r.targetNew)]
                if let t = r.targetTrue { o["target_true"] = .string(t) }
                return .object(o)
            }),
            "method": .string(method),
            "layer": .int(Int64(layer)),
            "scores": Self.layerFloats(scores, "score"),
            "hyper_parameters": .object(hyperParameters.mapValues { .string($0) }),
        ]
        // Omitted when empty, so records without estimates encode as they did before the member existed.
        if !estimates.isEmpty { o["estimates"] = Self.layerFloats(estimates, "estimate") }
        return .object(o)
    }

    /// [{"layer": l, key: "x"}, …] sorted by layer, floats as strings.
    private static func layerFloats(_ values: [Int: Float], _ key: String) -> JSONValue {
        .array(values.keys.sorted().map { .object(["layer": .int(Int64($0)), key: .string(FloatText.format(values[$0]!))]) })
    }

    /// The inverse of `layerFloats`: layers strictly increasing, every value a float.
    private static func parseLayerFloats(_ items: [JSONValue], _ key: String) throws -> [Int: Float] {
        var out: [Int: Float] = [:]
        var previous = Int.min
        for item in items {
            let s = try Fields(item, key)
            let layer = try s.int("layer")
            guard layer > previous else { throw PatchError.invalidManifest("\(key)s are not sorted by layer") }
            previous = layer
            let text = try s.string(key)
            guard let x = FloatText.parse(text) else { throw PatchError.invalidManifest("\(key) \(text) is not a float") }
            out[layer] = x
        }
        return out
    }

    init(json: JSONValue) throws {
        let f = try Fields(json, "edit")
        var requests: [RecordedRequest] = []
        for item in try f.array("requests") {
            let r = try Fields(item, "request")
            var targetTrue: String?
            if r.optional("target_true") != nil { targetTrue = try r.string("target_true") }
            requests.append(RecordedRequest(prompt: try r.string("prompt"), subject: try r.string("subject"),
                                        targetNew: try r.string("target_new"), targetTrue: targetTrue))
        }
        let scores = try Self.parseLayerFloats(try f.array("scores"), "score")
        let estimates = f.optional("estimates") == nil ? [:] : try Self.parseLayerFloats(try f.array("estimates"), "estimate")
        var hp: [String: String] = [:]
        for (k, v) in try f.object("hyper_parameters") {
            guard case let .string(s) = v else { throw PatchError.invalidManifest("hyper-parameter \(k) is not a string") }
            hp[k] = s
        }
        self.init(requests: requests, method: try f.string("method"), layer: try f.int("layer"), scores: scores,
                  estimates: estimates, hyperParameters: hp)
    }
}

/// Typed access to the members of one manifest object, each failure naming the field.
struct Fields {
    let members: [String: JSONValue]
    let context: String

    init(_ value: JSONValue, _ context: String) throws {
        guard case let .object(m) = value else { throw PatchError.invalidManifest("\(context) is not an object") }
        members = m
        self.context = context
    }

    func optional(_ key: String) -> JSONValue? { members[key] }

    func required(_ key: String) throws -> JSONValue {
        guard let v = members[key] else { throw PatchError.invalidManifest("\(context) has no \(key)") }
        return v
    }

    func string(_ key: String) throws -> String {
        guard case let .string(s) = try required(key) else { throw PatchError.invalidManifest("\(context).\(key) is not a string") }
        return s
    }

    func int(_ key: String) throws -> Int {
        guard case let .int(i) = try required(key), i >= 0, i <= Int64(Int32.max) else {
            throw PatchError.invalidManifest("\(context).\(key) is not an integer in 0...\(Int32.max)")
        }
        return Int(i)
    }

    func array(_ key: String) throws -> [JSONValue] {
        guard case let .array(a) = try required(key) else { throw PatchError.invalidManifest("\(context).\(key) is not an array") }
        return a
    }

    func object(_ key: String) throws -> [String: JSONValue] {
        guard case let .object(o) = try required(key) else { throw PatchError.invalidManifest("\(context).\(key) is not an object") }
        return o
    }

    func dtype(_ key: String) throws -> DType {
        let name = try string(key)
        guard let t = DType(manifestName: name) else { throw PatchError.invalidManifest("\(context).\(key) \(name) is not a known type") }
        return t
    }

    func sha256(_ key: String) throws -> String {
        let s = try string(key)
        guard Hash.isSHA256Hex(s) else { throw PatchError.invalidManifest("\(context).\(key) is not 64 lowercase hex digits") }
        return s
    }

    /// "shape": [rows, cols], both positive, with rows*cols elements fitting comfortably in memory math.
    func shape() throws -> (Int, Int) {
        let a = try array("shape")
        guard a.count == 2, case let .int(r) = a[0], case let .int(c) = a[1], r > 0, c > 0, r <= 1 << 31, c <= 1 << 31,
              r.multipliedReportingOverflow(by: c).partialValue <= 1 << 40, !r.multipliedReportingOverflow(by: c).overflow
        else { throw PatchError.invalidManifest("\(context).shape is not [rows, cols] with positive sizes") }
        return (Int(r), Int(c))
    }
}
