// port of llm.c encoder_forward: token embedding (+ learned position embedding for GPT-2). Legend: T tokens, C width.

enum Encoder {
    /// - out: [T, C]
    /// - tokens, positions: [T] (ids already range-checked)
    /// - wte: [V, C] in its stored form; wpe: [maxPositions, C] or nil (rotary models)
    static func forward(out: UnsafeMutablePointer<Float>, tokens: [Int], positions: [Int], wte: Weight,
                        wpe: UnsafePointer<Float>?, c: Int) {
        for t in 0..<tokens.count {
            let y = out + t * c
            wte.row(tokens[t], into: y) // dequantizes just this row of a quantized table
            if let wpe {
                let p = wpe + positions[t] * c
                for j in 0..<c { y[j] += p[j] }
            }
        }
    }
}
