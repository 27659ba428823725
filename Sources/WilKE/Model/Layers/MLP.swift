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

    /// Accumulates dinp += gelu'(inp) · dout, with gelu' = ½(1 + tanh u) + ½x·sech²(u)·c·(1 + 3·0.044715·x²).
    /// - dinp: [N], accumulated; inp: [N] the pre-activation; dout: [N]
    static func backward(dinp: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, dout: UnsafePointer<Float>, n: Int) {
        for i in 0..<n {
            let x = inp[i]
            let t = tanhf(c * (x + 0.044715 * x * x * x))
            let local = 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * c * (1 + 3 * 0.044715 * x * x)
            dinp[i] += local * dout[i]
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

    /// Accumulates both input gradients: dup += silu(gate)·dout, dgate += silu'(gate)·up·dout with
    /// silu'(g) = σ(g)·(1 + g·(1 − σ(g))).
    /// - dgate, dup: [N], accumulated; dout, gate, up: [N]
    static func backward(dgate: UnsafeMutablePointer<Float>, dup: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
                         gate: UnsafePointer<Float>, up: UnsafePointer<Float>, n: Int) {
        for i in 0..<n {
            let g = gate[i], s = 1 / (1 + expf(-g))
            dup[i] += g * s * dout[i]
            dgate[i] += s * (1 + g * (1 - s)) * up[i] * dout[i]
        }
    }
}
