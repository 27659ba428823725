import Dispatch
import Formats

// The pinned arithmetic of apply and revert (docs/PATCH_FORMAT.md §4). Every element is computed by
// the same scalar sequence of fused multiply-adds on every machine:
//
//   a[i,t] = Float(U[i,t] * scale)                       (f32 product, round-to-nearest-even)
//   apply:  acc = float(w);  for t in 0..<k:            acc = fma(a[i,t], V[j,t], acc);  w' = round(acc)
//   revert: acc = float(w'); for t in (0..<k).reversed(): acc = fma(-a[i,t], V[j,t], acc); w = round(acc)
//
// `fma` is `Float.addingProduct` (one rounding; IEEE fusedMultiplyAdd), never BLAS. `round` is
// round-to-nearest-even into the target type, and any NaN result is written as the type's canonical
// quiet NaN so that NaN payloads cannot differ between machines.

/// Float element types a step can read or write directly.
enum ElementCodec {
    static let floatTypes: Set<DType> = [.f32, .f16, .bf16]

    /// Whether the Patch library can read tensors of `dtype` (plain floats, or blocks with a dequantizer).
    static func canRead(_ dtype: DType) -> Bool { floatTypes.contains(dtype) || QuantBridge.canDequantize(dtype) }

    /// The tensor's elements as f32, in storage order. Float types widen exactly.
    static func decode(_ t: TensorBytes) throws -> [Float] {
        let n = t.rows * t.cols
        guard t.dtype.byteCount(elements: n) == t.bytes.count else {
            throw PatchError.shapeMismatch(tensor: "", expected: "\(n) elements of \(t.dtype.name)", found: "\(t.bytes.count) bytes")
        }
        var out = [Float](repeating: 0, count: n)
        t.bytes.withUnsafeBytes { raw in
            switch t.dtype {
            case .f32: for e in 0..<n { out[e] = Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * e, as: UInt32.self))) }
            case .f16: for e in 0..<n { out[e] = Float(Float16(bitPattern: UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * e, as: UInt16.self)))) }
            case .bf16: for e in 0..<n { out[e] = BFloat16.toFloat(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * e, as: UInt16.self))) }
            default: break
            }
        }
        if !floatTypes.contains(t.dtype) { out = try QuantBridge.dequantize(t.dtype, t.bytes, count: n) }
        return out
    }

    /// `xs` rounded to `dtype` (f32, f16 or bf16) with round-to-nearest-even and canonical NaNs.
    static func encode(_ xs: [Float], as dtype: DType) -> [UInt8] {
        precondition(floatTypes.contains(dtype), "encode only writes float types")
        let width = dtype.blockBytes
        var out = [UInt8](repeating: 0, count: xs.count * width)
        out.withUnsafeMutableBytes { raw in
            for (e, x) in xs.enumerated() {
                switch dtype {
                case .f32:
                    let bits = x.isNaN ? UInt32(0x7FC0_0000) : x.bitPattern
                    raw.storeBytes(of: bits.littleEndian, toByteOffset: 4 * e, as: UInt32.self)
                case .f16:
                    let bits = x.isNaN ? UInt16(0x7E00) : Float16(x).bitPattern
                    raw.storeBytes(of: bits.littleEndian, toByteOffset: 2 * e, as: UInt16.self)
                default:
                    let bits = x.isNaN ? UInt16(0x7FC0) : BFloat16.fromFloat(x)
                    raw.storeBytes(of: bits.littleEndian, toByteOffset: 2 * e, as: UInt16.self)
                }
            }
        }
        return out
    }
}

/// The rank-k fused multiply-add chain over a tensor held as f32 in storage order.
enum DeltaKernel {
    enum Direction { case apply, revert }

    /// Factors arranged for the storage matrix: element (a, b) of the [R, C] storage matrix gets
    /// Σ_t A[a*k + t] * B[b*k + t]. For row-major storage A = scaled U (rows permuted into storage
    /// order) and B = V; for transposed storage A = V and B = scaled U. The product is commutative, so
    /// both describe the same fma(a[i,t], V[j,t], acc) of §4.
    struct Factors {
        var a: [Float]
        var b: [Float]
        var storageRows: Int
        var storageCols: Int
        var rank: Int
    }

    static func factors(of step: PatchStep) -> Factors {
        let k = step.rank
        var scaled = [Float](repeating: 0, count: step.rows * k)
        for i in 0..<step.rows {
            let r = step.layout.storageRow(i, rows: step.rows)
            for t in 0..<k { scaled[r * k + t] = step.u[i * k + t] * step.scale }
        }
        if step.layout.isTransposed { return Factors(a: step.v, b: scaled, storageRows: step.cols, storageCols: step.rows, rank: k) }
        return Factors(a: scaled, b: step.v, storageRows: step.rows, storageCols: step.cols, rank: k)
    }

    /// Runs the chain over `x` ([storageRows * storageCols] f32, storage order) in place. Rows are
    /// spread over threads; each element's operation order is fixed, so threads do not change bytes.
    static func run(_ x: inout [Float], _ f: Factors, _ direction: Direction) {
        precondition(x.count == f.storageRows * f.storageCols)
        let k = f.rank, cols = f.storageCols
        guard k > 0 else { return }
        let chunk = max(1, (1 << 16) / max(1, cols))
        let chunks = (f.storageRows + chunk - 1) / chunk
        f.a.withUnsafeBufferPointer { a in
            f.b.withUnsafeBufferPointer { b in
                x.withUnsafeMutableBufferPointer { xp in
                    let shared = SharedBuffers(x: xp, a: a, b: b)
                    DispatchQueue.concurrentPerform(iterations: chunks) { c in
                        let x = shared.x, a = shared.a, b = shared.b
                        for row in (c * chunk)..<min(f.storageRows, (c + 1) * chunk) {
                            let base = row * cols, ar = row * k
                            if k == 1 {
                                let a0 = direction == .apply ? a[ar] : -a[ar]
                                for col in 0..<cols { x[base + col] = x[base + col].addingProduct(a0, b[col]) }
                                continue
                            }
                            for col in 0..<cols {
                                var acc = x[base + col]
                                let bc = col * k
                                if direction == .apply {
                                    for t in 0..<k { acc = acc.addingProduct(a[ar + t], b[bc + t]) }
                                } else {
                                    for t in stride(from: k - 1, through: 0, by: -1) { acc = acc.addingProduct(-a[ar + t], b[bc + t]) }
                                }
                                x[base + col] = acc
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Buffers handed to worker threads; each thread writes a disjoint range of rows of `x`.
private struct SharedBuffers: @unchecked Sendable {
    let x: UnsafeMutableBufferPointer<Float>
    let a: UnsafeBufferPointer<Float>
    let b: UnsafeBufferPointer<Float>
}
