import Testing
@testable import Formats

@Suite struct CheckpointLayoutTests {
    /// llama.cpp's converter permutes Q/K rows as W.reshape(n_head, 2, rows/n_head/2, cols).swapaxes(1, 2):
    /// GGUF row (h, i, c) holds HF row (h, c, i). storageRow must be exactly that map.
    @Test(arguments: [(576, 9), (192, 3), (32, 4), (8, 1)])
    func permutedRowsMatchTheConverter(rows: Int, heads: Int) {
        let half = rows / heads / 2
        var gguf = [Int](repeating: -1, count: rows)  // gguf[storageRow] = hfRow
        for h in 0..<heads { for i in 0..<half { for c in 0..<2 {
            gguf[h * 2 * half + i * 2 + c] = h * 2 * half + c * half + i
        } } }
        let layout = StorageLayout.permutedRows(heads: heads)
        for hfRow in 0..<rows { #expect(gguf[layout.storageRow(hfRow, rows: rows)] == hfRow) }
        #expect(Set((0..<rows).map { layout.storageRow($0, rows: rows) }).count == rows)
    }

    @Test func namesMapBothWays() {
        let cases: [(Architecture, String, String)] = [
            (.llama, "model.layers.3.mlp.down_proj.weight", "blk.3.ffn_down.weight"),
            (.llama, "model.embed_tokens.weight", "token_embd.weight"),
            (.llama, "lm_head.weight", "output.weight"),
            (.qwen2, "model.layers.0.self_attn.q_proj.bias", "blk.0.attn_q.bias"),
            (.gpt2, "transformer.h.11.mlp.c_proj.weight", "blk.11.ffn_down.weight"),
            (.gpt2, "transformer.wpe.weight", "position_embd.weight"),
            (.gptj, "transformer.h.2.mlp.fc_out.bias", "blk.2.ffn_down.bias"),
            (.gptj, "lm_head.bias", "output.bias"),
        ]
        for (arch, hf, gguf) in cases {
            #expect(TensorNames.canonical(hf: hf, architecture: arch) == gguf)
            #expect(TensorNames.huggingFace(canonical: gguf, architecture: arch) == hf)
        }
        #expect(TensorNames.canonical(hf: "h.0.attn.bias", architecture: .gpt2) == nil)
        #expect(TensorNames.canonical(hf: "h.0.mlp.c_fc.weight", architecture: .gpt2) == "blk.0.ffn_up.weight")
    }

    @Test func layouts() {
        #expect(TensorNames.layout(canonical: "blk.0.ffn_down.weight", architecture: .gpt2, isGGUF: false, rank: 2, heads: 4, kvHeads: 4) == .conv1D)
        #expect(TensorNames.layout(canonical: "blk.0.ffn_down.weight", architecture: .gpt2, isGGUF: true, rank: 2, heads: 4, kvHeads: 4) == .rowMajor)
        #expect(TensorNames.layout(canonical: "blk.0.attn_k.weight", architecture: .llama, isGGUF: true, rank: 2, heads: 9, kvHeads: 3) == .permutedRows(heads: 3))
        #expect(TensorNames.layout(canonical: "blk.0.attn_k.weight", architecture: .qwen2, isGGUF: true, rank: 2, heads: 9, kvHeads: 3) == .rowMajor)
        #expect(TensorNames.layout(canonical: "blk.0.attn_norm.weight", architecture: .llama, isGGUF: true, rank: 1, heads: 9, kvHeads: 3) == .vector)
    }

    /// The one bytes -> logical conversion agrees with the one addressing function for every layout:
    /// logical (i, j) is stored element storageIndex(i, j), from f32 values and from F16 bytes alike.
    @Test(arguments: [StorageLayout.rowMajor, .conv1D, .permutedRows(heads: 2), .permutedRows(heads: 1)])
    func logicalReadsThroughStorageIndex(layout: StorageLayout) throws {
        let (rows, cols) = (8, 5)
        let stored = (0..<(rows * cols)).map { Float($0) }
        let shape = layout.isTransposed ? [cols, rows] : [rows, cols]
        let w = layout.logical(stored, shape: shape)
        let bytes = stored.flatMap { v in withUnsafeBytes(of: Float16(v).bitPattern.littleEndian, Array.init) }
        let fromBytes = try bytes.withUnsafeBytes { try layout.logical($0, dtype: .f16, shape: shape) }
        for i in 0..<rows { for j in 0..<cols {
            #expect(w[i * cols + j] == stored[layout.storageIndex(row: i, col: j, rows: rows, cols: cols)], "\(layout) (\(i), \(j))")
        } }
        #expect(fromBytes == w)
        #expect(StorageLayout.vector.logical(stored, shape: [rows * cols]) == stored)
    }
}
