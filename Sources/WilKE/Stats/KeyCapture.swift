extension TransformerModel {
    /// A forward pass cut for statistics: runs blocks 0...max(layers) over the packed rows (no padding,
    /// no logits, nothing above the highest requested layer) and hands each requested layer's keys to
    /// `body` while they are still in the block's buffers. `forward` with taps at every position gives the
    /// same keys but copies each one into its own array; this path copies nothing.
    /// - body: (layer, keys [T, F] row-major, T) with T = total tokens of `sequences`, rows in order.
    func captureKeys(_ sequences: [[Int]], layers: [Int],
                     _ body: (Int, UnsafePointer<Float>, Int) throws -> Void) throws {
        let cfg = config, c = cfg.dModel
        for l in layers where l < 0 || l >= cfg.nLayer { throw WilKEError.invalidLayer(l) }
        guard let top = layers.max() else { return }
        if sequences.contains(where: \.isEmpty) { throw WilKEError.invalidBatch("a row is empty") }
        let pack = try Packing(ForwardBatch(sequences: sequences), cfg)
        guard pack.total > 0 else { return }
        var kv = (0..<pack.rows).map { _ in KVCache(nLayer: cfg.nLayer, kvDim: cfg.kvDim) }
        var x = FloatBuffer(count: pack.total * c)
        Encoder.forward(out: x.p, tokens: sequences.flatMap { $0 }, positions: pack.positions,
                        wte: weights.tokenEmbd, wpe: weights.positionEmbd?.p, c: c)
        let wanted = Set(layers)
        for l in 0...top {
            let act = LayerActivations(cfg, tokens: pack.total, input: x)
            try block(l, act, pack, &kv, keepAttention: false, mlpDelta: nil)
            if wanted.contains(l) { try body(l, UnsafePointer(act.key.p), pack.total) }
            x = act.out
            // Layer l's keys/values are only read by layer l: drop them so memory stays flat.
            for r in kv.indices { kv[r].k[l] = []; kv[r].v[l] = [] }
        }
    }
}

extension TransformerModel {
    /// One incremental decoding step for the sampler: runs `sequences` (row r continues `kv[r]`) through
    /// every layer, appending to the caches IN PLACE, and returns the logits [V] of each row's last token.
    /// `forward` with `prefixes` must copy every cache on each step (the batch keeps a second reference
    /// to it), which made sampling quadratic in the document length.
    func decodeStep(_ sequences: [[Int]], _ kv: inout [KVCache]) throws -> [[Float]] {
        let cfg = config, c = cfg.dModel
        precondition(kv.count == sequences.count)
        if sequences.contains(where: \.isEmpty) { throw WilKEError.invalidBatch("a row is empty") }
        // Packing only reads the prefixes' lengths: hand it empty stand-ins so no cache is shared.
        var shape = ForwardBatch(sequences: sequences)
        shape.prefixes = kv.map { cache in
            var stub = KVCache(nLayer: 0, kvDim: cfg.kvDim)
            stub.count = cache.count
            return stub
        }
        let pack = try Packing(shape, cfg)
        var x = FloatBuffer(count: pack.total * c)
        Encoder.forward(out: x.p, tokens: sequences.flatMap { $0 }, positions: pack.positions,
                        wte: weights.tokenEmbd, wpe: weights.positionEmbd?.p, c: c)
        for l in 0..<cfg.nLayer {
            let act = LayerActivations(cfg, tokens: pack.total, input: x)
            try block(l, act, pack, &kv, keepAttention: false, mlpDelta: nil)
            x = act.out
        }
        return head(x, rows: (0..<pack.rows).map { pack.offsets[$0] + pack.lengths[$0] - 1 })
    }
}
