import Foundation

// One error type for the Formats module: a case per failure, each carrying what a user needs to find
// the problem (path, tensor, offset, expected and found values). Descriptions are one lowercase
// sentence; the Tool prefixes the file name where the case does not carry it.

public enum FormatError: Error, Equatable, CustomStringConvertible {
    // I/O
    case io(path: String, operation: String, errno: Int32)
    case emptyFile(path: String)
    case notAFile(path: String, kind: String)
    case outputExists(path: String)
    case emptyOutputPath
    case outputIsDirectory(path: String)
    case hardLinked(path: String, links: Int)
    case changedWhileWriting(path: String)
    case unknownFormat(path: String)

    // Byte-level reading
    case truncated(offset: Int, needed: Int, available: Int)
    case fileTruncated(what: String, count: UInt64, available: Int)

    // safetensors (FORMATS.md §1.4, in order)
    case headerTooSmall(length: Int)
    case headerTooLarge(length: UInt64)
    case invalidHeaderLength(length: UInt64, fileLength: Int)
    case invalidHeaderUTF8
    case invalidHeaderJSON(String)
    case invalidOffset(tensor: String)
    case validationOverflow(tensor: String)
    case misalignedSlice(tensor: String)
    case tensorInvalidInfo(tensor: String, expectedBytes: Int, foundBytes: Int)
    case metadataIncompleteBuffer(expected: Int, found: Int)
    case duplicateTensor(String)
    case unknownDType(String)
    case shardMissing(path: String)
    case invalidIndex(path: String, reason: String)

    // GGUF (FORMATS.md §2.3)
    case badMagic(found: [UInt8])
    case bigEndian
    case unsupportedVersion(UInt32)
    case tooManyItems(what: String, count: UInt64)
    case emptyKey(index: Int)
    case duplicateKey(String)
    case invalidValueType(key: String, type: UInt32)
    case nestedArray(key: String)
    case invalidBool(key: String, value: UInt8)
    case stringTooLong(length: UInt64)
    case invalidUTF8(what: String)
    case badAlignment(String)
    case tensorNameTooLong(String)
    case tooManyDimensions(tensor: String, count: UInt32)
    case negativeDimension(tensor: String)
    case elementCountOverflow(tensor: String)
    case unknownTensorType(tensor: String, type: UInt32)
    case rowNotBlockAligned(tensor: String, ne0: Int, blockSize: Int)
    case badTensorOffset(tensor: String, offset: UInt64, expected: UInt64)
    case tensorDataOutOfBounds(tensor: String)

    // Tensor types and conversion
    case unsupportedDType(String, operation: String)
    case shapeMismatch(tensor: String, expected: [Int], found: [Int])
    case tensorNotFound(String)
    case notWholeBlocks(dtype: String, elements: Int, blockSize: Int)
    case byteCountMismatch(dtype: String, elements: Int, expected: Int, found: Int)

    // Checkpoints
    case missingConfig(path: String)
    /// config.json does not parse as a JSON object.
    case invalidConfigJSON(path: String)
    case unsupportedArchitecture(String, supported: [String])
    /// A required key (GGUF `<arch>.block_count`, config.json `hidden_size`, ...) is absent.
    case missingHyperparameter(String)
    /// A config.json key holds another JSON type than the quantity needs.
    case invalidHyperparameter(String, expected: String)
    /// A size (layers, heads, widths, vocabulary, context) is zero or negative.
    case nonPositiveHyperparameter(String, value: Int)
    case kvHeadsDoNotDivide(heads: Int, kvHeads: Int)
    /// `heads` of `headDim` do not make `dModel` (GPT-2 / GPT-J, or a llama file without a head size).
    case headsDoNotTile(heads: Int, headDim: Int, dModel: Int)
    case invalidRotaryDim(Int, headDim: Int)
    // What the engine does not compute (`ModelConfig.checkEngineSupport`); header tools still read such models.
    case unsupportedActivation(String, supported: String)
    case unsupportedRopeType(String)
    case unsupportedMLPBias

    public var description: String {
        switch self {
        case let .io(path, operation, errno): return "\(path): \(operation) failed: \(errnoText(errno))"
        case let .emptyFile(path): return "\(path): file is empty"
        case let .notAFile(path, kind): return "\(path): is \(kind), not a regular file"
        case let .outputExists(path): return "\(path): output already exists (pass --force to overwrite)"
        case .emptyOutputPath: return "the output path is empty"
        case let .outputIsDirectory(path): return "\(path): output is a directory"
        case let .hardLinked(path, links):
            return "\(path): has \(links) hard links; rewriting it in place would leave the other names with the old bytes " +
                "(use -o, or pass --force to break the links)"
        case let .changedWhileWriting(path):
            return "\(path): was replaced by another process while being rewritten; nothing was written, run again"
        case let .unknownFormat(path): return "\(path): not a GGUF file, safetensors file or Hugging Face model directory"
        case let .truncated(offset, needed, available):
            return "file is truncated: needed \(needed) bytes at offset \(offset), \(available) available"
        case let .fileTruncated(what, count, available):
            return "file is truncated: it declares \(count) \(what)s but only \(available) bytes follow"
        case let .headerTooSmall(length): return "safetensors header too small: file has \(length) bytes, needs at least 8"
        case let .headerTooLarge(length): return "safetensors header too large: \(length) bytes (limit 100,000,000)"
        case let .invalidHeaderLength(length, fileLength):
            return "invalid safetensors header length \(length) for a file of \(fileLength) bytes"
        case .invalidHeaderUTF8: return "safetensors header is not valid UTF-8"
        case let .invalidHeaderJSON(reason): return "invalid safetensors header JSON: \(reason)"
        case let .invalidOffset(tensor): return "invalid data offsets for tensor '\(shown(tensor))' (holes, overlaps or out of range)"
        case let .validationOverflow(tensor): return "size of tensor '\(shown(tensor))' overflows"
        case let .misalignedSlice(tensor): return "tensor '\(shown(tensor))' does not fill a whole number of bytes"
        case let .tensorInvalidInfo(tensor, expected, found):
            return "tensor '\(shown(tensor))' has \(found) bytes but its shape and dtype need \(expected)"
        case let .metadataIncompleteBuffer(expected, found):
            return "data buffer has \(found) bytes but the tensors cover \(expected) (missing or trailing bytes)"
        case let .duplicateTensor(name): return "duplicate tensor name '\(shown(name))'"
        case let .unknownDType(name): return "unknown dtype '\(shown(name))'"
        case let .shardMissing(path): return "\(path): shard named in the index is missing"
        case let .invalidIndex(path, reason): return "\(path): invalid shard index: \(reason)"
        case let .badMagic(found):
            return "invalid magic \(found.map { String(format: "%02x", $0) }.joined()), expected 'GGUF'"
        case .bigEndian: return "big-endian GGUF files are not supported"
        case let .unsupportedVersion(v): return "unsupported GGUF version \(v) (supported: 2, 3)"
        case let .tooManyItems(what, count): return "implausible \(what) count \(count)"
        case let .emptyKey(index): return "metadata key \(index) is empty"
        case let .duplicateKey(key): return "duplicate metadata key '\(shown(key))'"
        case let .invalidValueType(key, type): return "metadata key '\(shown(key))' has invalid value type \(type)"
        case let .nestedArray(key): return "metadata key '\(shown(key))' is an array of arrays (not supported by ggml)"
        case let .invalidBool(key, value): return "metadata key '\(shown(key))' has invalid bool value \(value)"
        case let .stringTooLong(length): return "string of \(length) bytes exceeds the limit"
        case let .invalidUTF8(what): return "\(what) is not valid UTF-8"
        case let .badAlignment(reason): return "invalid general.alignment: \(reason)"
        case let .tensorNameTooLong(name): return "tensor name '\(shown(name))' is longer than 63 bytes"
        case let .tooManyDimensions(tensor, count): return "tensor '\(shown(tensor))' has \(count) dimensions (max 4)"
        case let .negativeDimension(tensor): return "tensor '\(shown(tensor))' has a negative dimension"
        case let .elementCountOverflow(tensor): return "element count of tensor '\(shown(tensor))' overflows"
        case let .unknownTensorType(tensor, type): return "tensor '\(shown(tensor))' has unknown ggml type \(type)"
        case let .rowNotBlockAligned(tensor, ne0, blockSize):
            return "tensor '\(shown(tensor))': row length \(ne0) is not a multiple of the block size \(blockSize)"
        case let .badTensorOffset(tensor, offset, expected):
            return "tensor '\(shown(tensor))' has offset \(offset), expected \(expected)"
        case let .tensorDataOutOfBounds(tensor): return "data of tensor '\(shown(tensor))' lies beyond the end of the file"
        case let .unsupportedDType(name, operation): return "dtype \(name) is not supported for \(operation)"
        case let .shapeMismatch(tensor, expected, found):
            return "tensor '\(shown(tensor))' has shape \(found), expected \(expected)"
        case let .tensorNotFound(name): return "tensor '\(shown(name))' not found"
        case let .notWholeBlocks(dtype, elements, blockSize):
            return "\(elements) elements of \(dtype) are not a whole number of \(blockSize)-element blocks"
        case let .byteCountMismatch(dtype, elements, expected, found):
            return "\(elements) elements of \(dtype) take \(expected) bytes, but the buffer has \(found)"
        case let .missingConfig(path): return "\(path): config.json is missing"
        case let .invalidConfigJSON(path): return "\(path): invalid config: not a JSON object"
        case let .unsupportedArchitecture(name, supported):
            return "unsupported architecture '\(shown(name))' (supported: \(supported.joined(separator: ", ")))"
        case let .missingHyperparameter(key): return "missing hyper-parameter '\(shown(key))'"
        case let .invalidHyperparameter(key, expected): return "hyper-parameter '\(shown(key))' is not \(expected)"
        case let .nonPositiveHyperparameter(name, value): return "hyper-parameter \(name) must be positive, got \(value)"
        case let .kvHeadsDoNotDivide(heads, kvHeads): return "\(heads) attention heads are not a multiple of \(kvHeads) key/value heads"
        case let .headsDoNotTile(heads, headDim, dModel): return "\(heads) heads of \(headDim) do not tile d_model \(dModel)"
        case let .invalidRotaryDim(dim, headDim): return "rotary dim \(dim) must be even, positive and at most the head dim \(headDim)"
        case let .unsupportedActivation(name, supported):
            return "activation \(shown(name)) is not supported (this architecture runs \(supported))"
        case let .unsupportedRopeType(kind): return "rope type \(shown(kind)) is not supported (plain RoPE only)"
        case .unsupportedMLPBias: return "MLP biases (mlp_bias) are not supported"
        }
    }
}

/// The C library's text for an errno value, e.g. "No such file or directory".
func errnoText(_ code: Int32) -> String {
    guard let text = strerror(code) else { return "errno \(code)" }
    return String(cString: text)
}

/// A name or key from the file as it appears inside a message: escaped and capped (DisplayText).
func shown(_ s: String) -> String { DisplayText.escaped(s, limit: 96) }
