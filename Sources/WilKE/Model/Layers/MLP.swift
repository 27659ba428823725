// MLP activations. GPT-2 / GPT-J: key = gelu_new(x W_fcᵀ + b); llama: key = silu(x W_gateᵀ) ⊙ (x W_upᵀ).
// The key is ROME's k: the input of the output projection (c_proj / fc_out / down_proj). Legend: N elements.
import Foundation

/// gelu_new, the tanh approximation used by GPT-2 and GPT-J.
enum GELUNew {
    static let c = Float((2.0 / Double.pi).squareRoot())

    /// - out: [N]; inp: [N] (the pre-activation, kept for backward)
    static func forward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, n: Int) {
        for i in 0..<n {
            let x = inp[i]
            out[i] = 0.5 * x * (1 + tanhf(c * (x + 0.044715 * x * x * x)))
        }
    }
}

/// SwiGLU gating of llama MLPs: silu(gate) ⊙ up.
enum SwiGLU {
    /// - out: [N]; gate, up: [N] (both kept for backward)
    static func forward(out: UnsafeMutablePointer<Float>, gate: UnsafePointer<Float>, up: UnsafePointer<Float>, n: Int) {
        for i in 0..<n {
            let g = gate[i]
            out[i] = g / (1 + expf(-g)) * up[i]
        }
    }
}
