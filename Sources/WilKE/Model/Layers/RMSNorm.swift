// Llama RMSNorm (HF LlamaRMSNorm: x · rsqrt(mean(x²) + eps) · weight, all in f32). Legend: N rows, C channels.
import Foundation

enum RMSNorm {
    /// - out: [N, C]
    /// - rstd: [N] (1 / rms, kept for backward)
    /// - inp: [N, C]
    /// - weight: [C]
    static func forward(out: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
                        weight: UnsafePointer<Float>, n: Int, c: Int, eps: Float) {
        for i in 0..<n {
            let x = inp + i * c, y = out + i * c
            var ss: Float = 0
            for j in 0..<c { ss += x[j] * x[j] }
            let s = 1 / sqrtf(ss / Float(c) + eps)
            for j in 0..<c { y[j] = weight[j] * (x[j] * s) }
            rstd[i] = s
        }
    }

    /// Accumulates the input gradient (weights frozen). With g = weight ⊙ dout:
    /// dx += rstd · g − x · rstd³ · mean(g ⊙ x).
    /// - dinp: [N, C], accumulated
    /// - dout: [N, C]
    /// - inp: [N, C] the forward input; rstd: [N] from the forward
    /// - weight: [C]
    static func backward(dinp: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, inp: UnsafePointer<Float>,
                         rstd: UnsafePointer<Float>, weight: UnsafePointer<Float>, n: Int, c: Int) {
        for i in 0..<n {
            let x = inp + i * c, dy = dout + i * c, dx = dinp + i * c
            let s = rstd[i]
            var gx: Float = 0
            for j in 0..<c { gx += weight[j] * dy[j] * x[j] }
            let k = s * s * s * gx / Float(c)
            for j in 0..<c { dx[j] += s * weight[j] * dy[j] - k * x[j] }
        }
    }
}
