import Crypto
import Foundation
import Formats

/// Per-layer identity of what a layer's keys depend on, for the statistics cache.
///
/// The keys of layer L are a function of the embeddings (token_embd, position_embd and any other
/// non-block tensor except the head: output / output_norm), every tensor of blocks 0..<L, and block L
/// minus its MLP output projection (ffn_down, the matrix ROME edits). `layers[L]` is the SHA-256 over
/// exactly those tensors (name, dtype, shape, bytes), so an edit at layer e changes the fingerprints of
/// layers > e only. Whether an edited model should reuse the unedited model's statistics (WilKE's
/// reference does: C is computed once per model) is the caller's choice: it passes the fingerprint.
public struct ModelFingerprint: Sendable, Equatable {
    /// One 64-digit lowercase hex SHA-256 per layer.
    public let layers: [String]
    /// SHA-256 over every tensor, the head included: the identity of what the whole model computes
    /// (ROME's context templates are sampled from it).
    public let model: String

    public init(layers: [String]) {
        self.layers = layers
        model = SHA256.hash(data: Data(layers.joined(separator: "\n").utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// From a checkpoint's stored bytes (quantized blocks as stored; one SHA-256 pass over the file).
    public init(checkpoint: Checkpoint, nLayer: Int) {
        var parts: [(name: String, digest: [UInt8])] = []
        for t in checkpoint.tensors {
            var h = SHA256()
            let name = t.canonicalName ?? t.name
            h.update(data: Array("\(name)|\(t.dtype)|\(t.shape)|".utf8))
            h.update(bufferPointer: checkpoint.data(t))
            // Hashed once: its pages need not stay resident until the engine multiplies by the tensor.
            checkpoint.releasePages(t)
            parts.append((name, Array(h.finalize())))
        }
        self.init(digests: parts, nLayer: nLayer)
    }

    /// From a model's in-memory f32 weights (tests, or a model built without a checkpoint).
    public init(model: TransformerModel) {
        var parts: [(name: String, digest: [UInt8])] = []
        func add(_ name: String, _ buf: FloatBuffer?) {
            guard let buf else { return }
            add(name, buf)
        }
        func add(_ name: String, _ w: Weight?) {
            guard let w else { return }
            add(name, w.materialize())
        }
        func add(_ name: String, _ buf: FloatBuffer) {
            var h = SHA256()
            h.update(data: Array("\(name)|f32|[\(buf.count)]|".utf8))
            h.update(bufferPointer: UnsafeRawBufferPointer(start: buf.p, count: buf.count * 4))
            parts.append((name, Array(h.finalize())))
        }
        let w = model.weights
        add("token_embd.weight", w.tokenEmbd)
        add("position_embd.weight", w.positionEmbd)
        for (l, b) in w.layers.enumerated() {
            let p = "blk.\(l)."
            // In the order the f32 engine hashed them, so fingerprints of existing caches still match.
            add(p + "attn_norm.weight", b.attnNorm); add(p + "attn_norm.bias", b.attnNormBias)
            add(p + "attn_q.weight", b.wq); add(p + "attn_k.weight", b.wk); add(p + "attn_v.weight", b.wv)
            add(p + "attn_q.bias", b.bq); add(p + "attn_k.bias", b.bk); add(p + "attn_v.bias", b.bv)
            add(p + "attn_output.weight", b.wo); add(p + "attn_output.bias", b.bo)
            add(p + "ffn_norm.weight", b.ffnNorm); add(p + "ffn_norm.bias", b.ffnNormBias)
            add(p + "ffn_gate.weight", b.wGate); add(p + "ffn_up.weight", b.wUp); add(p + "ffn_up.bias", b.bUp)
            add(p + "ffn_down.weight", b.wDown); add(p + "ffn_down.bias", b.bDown)
        }
        // The config shapes the keys too (norm eps, RoPE theta); bytes alone would not see it.
        var h = SHA256()
        h.update(data: Array("config|\(model.config)".utf8))
        parts.append(("config", Array(h.finalize())))
        self.init(digests: parts, nLayer: model.config.nLayer)
    }

    private init(digests: [(name: String, digest: [UInt8])], nLayer: Int) {
        var global: [(String, [UInt8])] = [], blocks = [[(String, [UInt8])]](repeating: [], count: nLayer)
        for (name, d) in digests {
            if name.hasPrefix("blk.") {
                let idx = name.dropFirst(4).prefix { $0.isNumber }
                if let l = Int(idx), l < nLayer { blocks[l].append((name, d)) }
            } else if !name.hasPrefix("output") {
                global.append((name, d))
            }
        }
        func feed(_ h: inout SHA256, _ items: [(String, [UInt8])]) {
            for (n, d) in items.sorted(by: { $0.0 < $1.0 }) { h.update(data: Array(n.utf8)); h.update(data: d) }
        }
        var whole = SHA256()
        whole.update(data: Array("wilke-model-fingerprint-v1".utf8))
        feed(&whole, digests.map { ($0.name, $0.digest) })
        model = whole.finalize().map { String(format: "%02x", $0) }.joined()
        var prefix = SHA256()
        prefix.update(data: Array("wilke-key-fingerprint-v1".utf8))
        feed(&prefix, global)
        var out: [String] = []
        for l in 0..<nLayer {
            var h = prefix   // value copy: the running hash of everything below layer l
            feed(&h, blocks[l].filter { !$0.0.contains(".ffn_down.") })
            out.append(h.finalize().map { String(format: "%02x", $0) }.joined())
            feed(&prefix, blocks[l])
        }
        layers = out
    }
}
