import Formats

// The values a .wpatch file holds (docs/PATCH_FORMAT.md §2). Tensors are seen as logical matrices
// [rows, cols] (rows = output features, as torch nn.Linear), stored in some `StorageLayout` (Formats'
// vocabulary; the manifest spells it as §2.3's order + row permutation, Manifest.swift). A step's
// layout is never `.vector`: vectors are addressed as row-major [1, n].

/// A tensor's raw bytes with its element type and logical shape [rows, cols]. `bytes` holds
/// `dtype.byteCount(elements: rows*cols)` bytes in storage order.
public struct TensorBytes: Equatable, Sendable {
    public var dtype: DType
    public var rows: Int
    public var cols: Int
    public var bytes: [UInt8]

    public init(dtype: DType, rows: Int, cols: Int, bytes: [UInt8]) {
        self.dtype = dtype
        self.rows = rows
        self.cols = cols
        self.bytes = bytes
    }

    /// Lowercase hex SHA-256 of `bytes`.
    public var sha256: String { Hash.sha256Hex(bytes) }
}

/// Identity of one base tensor before the patch touches it.
public struct TensorFingerprint: Equatable, Sendable {
    public var name: String
    public var dtype: DType
    public var rows: Int
    public var cols: Int
    public var layout: StorageLayout
    /// Lowercase hex SHA-256 of the tensor's raw bytes.
    public var sha256: String

    public init(name: String, dtype: DType, rows: Int, cols: Int, layout: StorageLayout, sha256: String) {
        self.name = name
        self.dtype = dtype
        self.rows = rows
        self.cols = cols
        self.layout = layout
        self.sha256 = sha256
    }
}

/// The model a patch applies to: architecture (e.g. "llama"), checkpoint format ("gguf",
/// "safetensors") and every touched tensor, sorted by name.
public struct BaseFingerprint: Equatable, Sendable {
    public var architecture: String
    public var format: String
    public var tensors: [TensorFingerprint]

    public init(architecture: String, format: String, tensors: [TensorFingerprint]) {
        self.architecture = architecture
        self.format = format
        self.tensors = tensors
    }
}

/// One fact-edit request: `prompt` contains "{}" where `subject` goes.
public struct RecordedRequest: Hashable, Sendable {
    public var prompt: String
    public var subject: String
    public var targetNew: String
    public var targetTrue: String?

    public init(prompt: String, subject: String, targetNew: String, targetTrue: String? = nil) {
        self.prompt = prompt
        self.subject = subject
        self.targetNew = targetNew
        self.targetTrue = targetTrue
    }
}

/// How an edit was computed: requests, method ("rome", "wilke"), edited layer, per-layer scores
/// (the layer-selection statistic) and hyper-parameters as strings.
public struct EditRecord: Equatable, Sendable {
    public var requests: [RecordedRequest]
    public var method: String
    public var layer: Int
    /// The exact statistic of each layer computed (WilKE: LA(l) of every optimized layer).
    public var scores: [Int: Float]
    /// A cheaper statistic of layers that were only estimated (WilKE's fast scan: LA_est(l) of every
    /// candidate); empty otherwise, and in patches written before it existed.
    public var estimates: [Int: Float]
    public var hyperParameters: [String: String]

    public init(requests: [RecordedRequest], method: String, layer: Int, scores: [Int: Float] = [:],
                estimates: [Int: Float] = [:], hyperParameters: [String: String] = [:]) {
        self.requests = requests
        self.method = method
        self.layer = layer
        self.scores = scores
        self.estimates = estimates
        self.hyperParameters = hyperParameters
    }
}

/// Data that makes revert byte-exact (§5). `bytes` is the encoded section; `count` its entries.
public struct Residue: Equatable, Sendable {
    public enum Kind: String, Sendable {
        /// Float tensors: XOR fix-ups of the elements where the reverse arithmetic misses.
        case xor
        /// Quantized tensors: original blocks where requantization does not reproduce them.
        case blocks
    }

    public var kind: Kind
    public var count: Int
    public var bytes: [UInt8]

    public init(kind: Kind, count: Int, bytes: [UInt8]) {
        self.kind = kind
        self.count = count
        self.bytes = bytes
    }
}

/// One rank-k update of one tensor: w' = round(w + Σ_t (scale·U[i,t]) · V[j,t]) in the fixed order of
/// §4 (then XOR the forward residue), with the hashes before and after and the residue for exact
/// revert. Rank 0 is a pure byte change carried by the residues (dense deltas, vectors).
public struct PatchStep: Equatable, Sendable {
    public var tensor: String
    /// Type of the tensor this step reads.
    public var dtype: DType
    public var rows: Int
    public var cols: Int
    public var layout: StorageLayout
    public var rank: Int
    public var scale: Float
    /// [rows, rank] row-major f32: U[i*rank + t].
    public var u: [Float]
    /// [cols, rank] row-major f32: V[j*rank + t].
    public var v: [Float]
    public var baseSHA256: String
    public var resultSHA256: String
    /// Type of the tensor this step writes: `dtype` for float tensors, the promotion type for quantized.
    public var resultDType: DType
    public var residue: Residue
    /// XOR fix-ups (kind `.xor`, over `resultDType` elements) applied after the forward arithmetic, so
    /// that apply reproduces an exact target (extracted patches, squash); empty for ordinary edits.
    public var forwardResidue: Residue
    public var edits: [EditRecord]

    public init(tensor: String, dtype: DType, rows: Int, cols: Int, layout: StorageLayout, rank: Int, scale: Float,
                u: [Float], v: [Float], baseSHA256: String, resultSHA256: String, resultDType: DType,
                residue: Residue, edits: [EditRecord], forwardResidue: Residue = .empty(.xor)) {
        self.forwardResidue = forwardResidue
        self.tensor = tensor
        self.dtype = dtype
        self.rows = rows
        self.cols = cols
        self.layout = layout
        self.rank = rank
        self.scale = scale
        self.u = u
        self.v = v
        self.baseSHA256 = baseSHA256
        self.resultSHA256 = resultSHA256
        self.resultDType = resultDType
        self.residue = residue
        self.edits = edits
    }

    /// Whether revert promotes back from a float type to quantized blocks.
    public var isPromotion: Bool { dtype != resultDType }
}

/// A whole patch: the base it applies to, the ordered steps, and free-form string metadata.
public struct Patch: Equatable, Sendable {
    public var base: BaseFingerprint
    public var steps: [PatchStep]
    public var metadata: [String: String]

    public init(base: BaseFingerprint, steps: [PatchStep], metadata: [String: String] = [:]) {
        self.base = base
        self.steps = steps
        self.metadata = metadata
    }

    /// Names of the tensors the steps touch, sorted.
    public var touchedTensors: [String] { Array(Set(steps.map(\.tensor))).sorted() }
}
