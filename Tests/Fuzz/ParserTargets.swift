import Foundation
@_spi(Fuzzing) import Formats
import WilKE

// Fuzz targets for the checkpoint and text parsers: GGUF, the safetensors header, tokenizer.json,
// config.json and the --requests file (JSONL, CounterFact, KnowEdit).

/// `gguf`: open the bytes as a GGUF file; if that works, every metadata value decodes, the
/// hyper-parameters read as `Checkpoint` reads them, and every tensor lies inside the file.
func fuzzGGUF(_ data: UnsafeRawBufferPointer) {
    guard let file = try? MappedFile(copying: data, path: "fuzz.gguf"), let g = try? GGUFFile(file: file) else { return }
    for (key, value) in g.metadata { _ = DisplayText.escaped(key + "\(value)") }
    _ = try? ModelConfig(gguf: { g[$0] }, arrayCount: { g.entry($0)?.arrayCount }, hasOutputTensor: g.tensor(named: "output.weight") != nil)
    for t in g.tensors {
        let start = g.dataOffset + t.offset
        precondition(start >= 0 && start + t.byteCount <= file.count, "tensor \(t.name) outside the file")
    }
}

/// `safetensors`: open the bytes as a safetensors file; every tensor's range lies in the data area.
func fuzzSafetensors(_ data: UnsafeRawBufferPointer) {
    guard let file = try? MappedFile(copying: data, path: "fuzz.safetensors"), let st = try? SafetensorsFile(file: file) else { return }
    for t in st.tensors {
        precondition(t.fileRange.lowerBound >= 0 && t.fileRange.upperBound <= file.count, "tensor \(t.name) outside the file")
    }
    _ = st.metadata.count
}

/// `tokenizer`: build a tokenizer from tokenizer.json bytes and run it on a fixed text both ways.
func fuzzTokenizerJSON(_ data: UnsafeRawBufferPointer) {
    guard let tok = try? BPETokenizer(tokenizerJSON: Data(data)) else { return }
    let ids = tok.encode("Hello wörld, 123 — the Eiffel Tower\n\t<|im_start|>", addSpecial: true)
    _ = tok.decode(ids)
    _ = tok.decode([-1, 0, 1, Int(Int32.max), Int.max])
}

/// `config`: config.json as Checkpoint and the engine read it (ModelConfig), and its engine check.
func fuzzConfigJSON(_ data: UnsafeRawBufferPointer) {
    let bytes = Data(data)
    _ = try? ModelConfig(configJSON: bytes, path: "config.json").checkEngineSupport()
}

/// `requests`: the --requests reader, strict and lenient; lenient never rejects more than strict accepts.
func fuzzRequests(_ data: UnsafeRawBufferPointer) {
    let bytes = Data(data)
    let strict = try? RequestFile.parse(bytes, source: "fuzz.jsonl")
    let lenient = try? RequestFile.parse(bytes, source: "fuzz.jsonl", lenient: true)
    if let strict { precondition(lenient?.requests.count == strict.requests.count, "lenient reading lost requests") }
}
