import ArgumentParser
import Foundation
import Formats

extension RootCommand.Dev {
    /// A random-weight llama GGUF of any shape with a real tokenizer, for the Scale benchmark: it measures
    /// memory and time at 1B and 8B shapes without downloading them. Weights are uniform noise of std
    /// ~0.02 written straight as stored bytes (no f32 intermediate), so a 4 GB file takes seconds.
    struct GenLlama: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "gen-llama", abstract: "Write a synthetic random-weight llama GGUF with the tokenizer of another GGUF.")

        @Argument(help: "Output .gguf file.") var output: String
        @Option(help: "GGUF whose tokenizer and vocabulary are copied (e.g. SmolLM2).") var like: String
        @Option(help: "Blocks.") var layers: Int
        @Option(name: .customLong("d-model"), help: "Residual width.") var dModel: Int
        @Option(name: .customLong("d-ff"), help: "MLP width.") var dFF: Int
        @Option(help: "Query heads.") var heads: Int
        @Option(name: .customLong("kv-heads"), help: "Key/value heads.") var kvHeads: Int
        @Option(help: "Matrix type: q4_0, q8_0, f16, bf16 or f32.") var dtype = "q4_0"
        @Flag(help: "Replace an existing output.") var force = false

        func run() throws {
            let types: [String: DType] = ["q4_0": .q4_0, "q8_0": .q8_0, "f16": .f16, "bf16": .bf16, "f32": .f32]
            guard let type = types[dtype] else { throw CLIError("--dtype must be one of \(types.keys.sorted().joined(separator: ", "))") }
            guard dModel % heads == 0, heads % kvHeads == 0, dModel % 32 == 0, dFF % 32 == 0 else {
                throw CLIError("the heads must tile --d-model and the kv heads the heads; widths must be multiples of 32")
            }
            let src = try GGUFFile(file: try MappedFile(path: like))
            guard let vocab = src.entry("tokenizer.ggml.tokens")?.arrayCount else { throw CLIError("\(like) has no tokenizer") }
            let hd = dModel / heads
            let arch: [String: GGUFValue] = [
                "general.architecture": .text("llama"), "general.name": .text("synthetic-\(layers)x\(dModel)"),
                "general.file_type": .uint32(type == .q4_0 ? 2 : type == .q8_0 ? 7 : type == .f16 ? 1 : type == .bf16 ? 32 : 0),
                "llama.block_count": .uint32(UInt32(layers)), "llama.embedding_length": .uint32(UInt32(dModel)),
                "llama.feed_forward_length": .uint32(UInt32(dFF)), "llama.attention.head_count": .uint32(UInt32(heads)),
                "llama.attention.head_count_kv": .uint32(UInt32(kvHeads)), "llama.context_length": .uint32(8192),
                "llama.rope.dimension_count": .uint32(UInt32(hd)), "llama.rope.freq_base": .float32(10000),
                "llama.attention.layer_norm_rms_epsilon": .float32(1e-5), "llama.vocab_size": .uint32(UInt32(vocab)),
            ]
            // Tokenizer metadata from the source, the architecture keys replaced.
            var meta = src.metadata.filter { $0.key.hasPrefix("tokenizer.") || $0.key == "general.alignment" }
            meta.insert(contentsOf: arch.sorted { $0.key < $1.key }.map { (key: $0.key, value: $0.value) }, at: 0)
            var w = GGUFWriter(metadata: meta)
            var seed: UInt64 = 1
            func matrix(_ name: String, _ rows: Int, _ cols: Int) {
                seed &+= 1
                let s = seed
                w.addTensor(name: name, ne: [cols, rows], dtype: type, source: .fill { Self.noise(type, $0, seed: s) })
            }
            func ones(_ name: String) {
                w.addTensor(name: name, ne: [dModel], dtype: .f32, source: .fill { buf in
                    for i in 0..<dModel { buf.storeBytes(of: Float(1), toByteOffset: 4 * i, as: Float.self) }
                })
            }
            matrix("token_embd.weight", vocab, dModel)
            for l in 0..<layers {
                let b = "blk.\(l)."
                ones(b + "attn_norm.weight")
                matrix(b + "attn_q.weight", dModel, dModel)
                matrix(b + "attn_k.weight", kvHeads * hd, dModel)
                matrix(b + "attn_v.weight", kvHeads * hd, dModel)
                matrix(b + "attn_output.weight", dModel, dModel)
                ones(b + "ffn_norm.weight")
                matrix(b + "ffn_gate.weight", dFF, dModel)
                matrix(b + "ffn_up.weight", dFF, dModel)
                matrix(b + "ffn_down.weight", dModel, dFF)
            }
            ones("output_norm.weight")  // the head is tied to token_embd, as in SmolLM2
            try w.write(to: output, overwrite: force)
        }

        /// Fills `buf` with blocks of `type` whose values are roughly uniform with std 0.02.
        static func noise(_ type: DType, _ buf: UnsafeMutableRawBufferPointer, seed: UInt64) {
            var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
            func next() -> UInt64 { state ^= state << 13; state ^= state >> 7; state ^= state << 17; return state }
            let words = buf.count / 8
            for i in 0..<words { buf.storeBytes(of: next(), toByteOffset: 8 * i, as: UInt64.self) }
            func half(_ x: Float) -> UInt16 { Float16(x).bitPattern }
            switch type {
            case .q4_0, .q8_0:  // fixed scale per block: nibbles (or int8) of the noise times d
                let (bb, d): (Int, Float) = type == .q4_0 ? (18, 0.02 / 4.6) : (34, 0.02 / 74)
                for b in 0..<(buf.count / bb) { buf.storeBytes(of: half(d), toByteOffset: b * bb, as: UInt16.self) }
            case .f16, .bf16:
                for i in 0..<(buf.count / 2) {
                    let u = Float(Int(next() & 0xFFFF) - 32768) / 32768 * 0.0346  // uniform, std 0.02
                    let bits = type == .f16 ? half(u) : UInt16(u.bitPattern >> 16)
                    buf.storeBytes(of: bits, toByteOffset: 2 * i, as: UInt16.self)
                }
            default:
                for i in 0..<(buf.count / 4) {
                    buf.storeBytes(of: Float(Int(next() & 0xFFFF) - 32768) / 32768 * 0.0346, toByteOffset: 4 * i, as: Float.self)
                }
            }
        }
    }
}
