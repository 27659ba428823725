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
}
