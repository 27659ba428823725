// Rotary position embeddings, in place on packed q or k rows. Legend: T tokens, H heads, D head dim, R rotary dims.
// llama (HF rotate_half): pairs (i, i + R/2). GPT-J (rotate_every_two): pairs (2i, 2i + 1) on the first R dims.
// Frequencies follow HF's f32 arithmetic: inv_freq[i] = 1 / theta^(2i/R), angle = Float(pos) · inv_freq[i];
// Llama 3's scaling divides inv_freq[i] by divisors[i] (`Llama3RopeScaling`), in forward and backward alike.
import Foundation

enum RoPE {
    /// - x: [T, H·D], rotated in place
    /// - positions: [T] absolute positions
    /// - divisors: [R/2] or nil (every frequency as is)
    static func forward(x: UnsafeMutablePointer<Float>, positions: [Int], nHead: Int, headDim: Int, rotaryDim: Int,
                        theta: Float, interleaved: Bool, divisors: [Float]? = nil) {
        rotate(x, positions, nHead, headDim, rotaryDim, theta, interleaved, divisors, sign: 1)
    }

    /// The rotation is orthogonal, so the gradient through it is the inverse rotation (angle −a), applied
    /// in place to the gradient (this one replaces rather than accumulates: the rotation is a bijection).
    /// - dx: [T, H·D], the gradient w.r.t. the rotated values on entry, w.r.t. the unrotated ones on exit
    /// - positions: [T] absolute positions
    static func backward(dx: UnsafeMutablePointer<Float>, positions: [Int], nHead: Int, headDim: Int, rotaryDim: Int,
                         theta: Float, interleaved: Bool, divisors: [Float]? = nil) {
        rotate(dx, positions, nHead, headDim, rotaryDim, theta, interleaved, divisors, sign: -1)
    }

    private static func rotate(_ x: UnsafeMutablePointer<Float>, _ positions: [Int], _ nHead: Int, _ headDim: Int,
                               _ rotaryDim: Int, _ theta: Float, _ interleaved: Bool, _ divisors: [Float]?, sign: Float) {
        let half = rotaryDim / 2
        precondition(divisors == nil || divisors!.count == half, "one divisor per rotary frequency")
        var invFreq = (0..<half).map { 1 / powf(theta, Float(2 * $0) / Float(rotaryDim)) }
        if let divisors { for i in 0..<half { invFreq[i] /= divisors[i] } }
        var cosv = [Float](repeating: 0, count: half), sinv = cosv
        for (t, pos) in positions.enumerated() {
            for i in 0..<half {
                let a = Float(pos) * invFreq[i]
                cosv[i] = cosf(a); sinv[i] = sign * sinf(a)
            }
            for h in 0..<nHead {
                let v = x + t * nHead * headDim + h * headDim
                for i in 0..<half {
                    let (i0, i1) = interleaved ? (2 * i, 2 * i + 1) : (i, i + half)
                    let a = v[i0], b = v[i1]
                    v[i0] = a * cosv[i] - b * sinv[i]
                    v[i1] = b * cosv[i] + a * sinv[i]
                }
            }
        }
    }
}
