import Formats

// A step's layout in the manifest (PATCH_FORMAT.md §2.3): `{"order": "row_major" | "transposed",
// "row_permutation": {"kind": "llama_rope", "heads": H}}`. Formats' `StorageLayout` is the vocabulary;
// this is only its spelling, so the bytes of every existing patch read and re-encode unchanged.
extension StorageLayout {
    var json: JSONValue {
        var o: [String: JSONValue] = ["order": .string(isTransposed ? "transposed" : "row_major")]
        if case let .permutedRows(heads) = self {
            o["row_permutation"] = .object(["kind": .string("llama_rope"), "heads": .int(Int64(heads))])
        }
        return .object(o)
    }

    /// The layout a manifest names, for a tensor of `rows` logical rows.
    init(json: JSONValue, rows: Int) throws {
        let f = try Fields(json, "layout")
        let transposed: Bool
        switch try f.string("order") {
        case "row_major": transposed = false
        case "transposed": transposed = true
        default: throw PatchError.invalidManifest("unknown storage order")
        }
        guard let p = f.optional("row_permutation") else {
            self = transposed ? .conv1D : .rowMajor
            return
        }
        let pf = try Fields(p, "row_permutation")
        guard try pf.string("kind") == "llama_rope" else { throw PatchError.invalidManifest("unknown row permutation") }
        // No checkpoint stores a permuted Wᵀ (llama.cpp permutes row-major Q/K only), so no writer
        // produces one and apply could never match it to a tensor.
        guard !transposed else { throw PatchError.invalidManifest("a transposed layout with a row permutation") }
        self = .permutedRows(heads: try pf.int("heads"))
        try checkFits(rows: rows)
    }

    /// A step's layout addresses a [rows, ·] tensor: the permutation pairs rows within each head, so it
    /// needs whole, even heads (rows % 2·heads, written so that no heads value from a file can
    /// overflow); `.vector` is spelled `.rowMajor` in steps (`CheckpointTensor.stepLayout`).
    func checkFits(rows: Int) throws {
        switch self {
        case .rowMajor, .conv1D: return
        case .vector: throw PatchError.invalidManifest("a step's layout is a matrix layout, not vector")
        case let .permutedRows(heads):
            guard heads > 0, rows % heads == 0, (rows / heads) % 2 == 0 else {
                throw PatchError.invalidManifest("llama_rope permutation with \(heads) heads does not divide \(rows) rows")
            }
        }
    }
}
