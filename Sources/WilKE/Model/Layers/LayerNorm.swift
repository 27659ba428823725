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

    /// Accumulates the input gradient (weights frozen: no dweight / dbias).
    /// With n̂ = (x − mean)·rstd and g = weight ⊙ dout: dx += rstd · (g − mean(g) − n̂ · mean(g ⊙ n̂)).
    /// - dinp: [N, C], accumulated
    /// - dout: [N, C]
    /// - inp: [N, C] the forward input; mean, rstd: [N] from the forward
    /// - weight: [C]
    static func backward(dinp: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, inp: UnsafePointer<Float>,
                         mean: UnsafePointer<Float>, rstd: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                         n: Int, c: Int) {
        for i in 0..<n {
            let x = inp + i * c, dy = dout + i * c, dx = dinp + i * c
            let (m, s) = (mean[i], rstd[i])
            var gMean: Float = 0, gnMean: Float = 0
            for j in 0..<c {
                let g = weight[j] * dy[j]
                gMean += g
                gnMean += g * (x[j] - m) * s
            }
            gMean /= Float(c); gnMean /= Float(c)
            for j in 0..<c {
                let nHat = (x[j] - m) * s
                dx[j] += s * (weight[j] * dy[j] - gMean - nHat * gnMean)
            }
        }
    }
}
