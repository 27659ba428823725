// port of llm.c layernorm_forward (GPT-2 ln_1 / ln_2 / ln_f, GPT-J ln_1 / ln_f). Legend: N rows, C channels.
import Foundation

enum LayerNorm {
    /// Normalises each row to zero mean / unit (biased) variance, then scales and shifts.
    /// - out: [N, C]
    /// - mean, rstd: [N] each (kept for backward)
    /// - inp: [N, C]
    /// - weight: [C]; bias: [C] or nil
    static func forward(out: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>,
                        rstd: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                        bias: UnsafePointer<Float>?, n: Int, c: Int, eps: Float) {
        for i in 0..<n {
            let x = inp + i * c, y = out + i * c
            var m: Float = 0
            for j in 0..<c { m += x[j] }
            m /= Float(c)
            var v: Float = 0
            for j in 0..<c { let d = x[j] - m; v += d * d }
            v /= Float(c)
            let s = 1 / sqrtf(v + eps)
            for j in 0..<c { y[j] = (x[j] - m) * s * weight[j] + (bias?[j] ?? 0) }
            mean[i] = m
            rstd[i] = s
        }
    }
}
