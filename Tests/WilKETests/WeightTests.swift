import Foundation
import Testing
@testable import Formats
@testable import WilKE

/// The stored-form weight path (a view of the bytes, dequantized a panel at a time) against the f32
/// path (the whole matrix dequantized, laid out logically, multiplied in f64) on every element type the
/// codecs read and every storage layout, with matrices big enough to span several panels.
@Suite struct WeightTests {
    static let dtypes: [DType] = [.f32, .f16, .bf16, .q8_0, .q4_0, .q4_1, .q5_0, .q5_1, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K]
    static let layouts: [StorageLayout] = [.rowMajor, .permutedRows(heads: 16), .conv1D]

    /// Owns random stored bytes for the views under test.
    final class Bytes {
        let data: [UInt8]
        init(_ d: [UInt8]) { data = d }
    }

    /// A [256, 512] logical matrix of `dtype` stored in `layout`, its bytes, and its logical f32 values.
    /// Panels are shrunk to 32 Ki floats so every layout spans several (64 rows; 128 Conv1D inputs).
    static func matrix(_ dtype: DType, _ layout: StorageLayout) throws -> (Weight, Bytes, [Float]) {
        Weight.panelFloats = 1 << 15
        let (rows, cols) = (256, 512)
        let stored = layout == .conv1D ? [cols, rows] : [rows, cols]
        // Plain types from real values (random bf16 bits would be NaN), block types from valid random blocks.
        let bytes = Bytes(TensorCodec.canQuantize(dtype) && !dtype.isQuantized
                          ? try TensorCodec.quantize(dtype, noise(rows * cols, seed: 7))
                          : TensorCodec.randomBlocks(dtype, blocks: rows * cols / dtype.blockSize, seed: 7))
        let w = try bytes.data.withUnsafeBytes {
            try Weight(name: "w", dtype: dtype, shape: stored, layout: layout, bytes: $0, owner: bytes)
        }
        let flat = try bytes.data.withUnsafeBytes { try TensorCodec.dequantize(dtype, $0, count: rows * cols) }
        var logical = [Float](repeating: 0, count: rows * cols)
        for r in 0..<rows {
            for c in 0..<cols {
                logical[r * cols + c] = layout == .conv1D ? flat[c * rows + r] : flat[layout.storageRow(r, rows: rows) * cols + c]
            }
        }
        return (w, bytes, logical)
    }

    /// max |a − b| / max |b|
    static func relativeError(_ a: [Float], _ b: [Double]) -> Double {
        let scale = b.map(abs).max() ?? 1
        return zip(a, b).map { abs(Double($0) - $1) }.max()! / max(scale, 1e-30)
    }

    @Test(arguments: dtypes) func forwardAndBackwardMatchF32(dtype: DType) throws {
        for layout in WeightTests.layouts {
            let (w, bytes, ref) = try WeightTests.matrix(dtype, layout)
            let (rows, cols) = (w.rows, w.cols)
            #expect(w.materialize().array == ref, "\(dtype) \(layout.name): materialize")
            var one = [Float](repeating: 0, count: cols)
            one.withUnsafeMutableBufferPointer { w.row(123, into: $0.baseAddress!) }
            #expect(one == Array(ref[(123 * cols)..<(124 * cols)]), "\(dtype) \(layout.name): row")
            for n in [1, 3] {
                let x = noise(n * cols, seed: 11), dy = noise(n * rows, seed: 12), bias = noise(rows, seed: 13)
                var y = [Float](repeating: 0, count: n * rows), dx = noise(n * cols, seed: 14)
                let dx0 = dx
                y.withUnsafeMutableBufferPointer { w.forward(out: $0.baseAddress!, inp: x, bias: bias, n: n) }
                dx.withUnsafeMutableBufferPointer { w.backward(dinp: $0.baseAddress!, dout: dy, n: n) }
                var yRef = [Double](repeating: 0, count: n * rows), dxRef = dx0.map(Double.init)
                for i in 0..<n {
                    for r in 0..<rows {
                        var s = Double(bias[r])
                        for c in 0..<cols { s += Double(x[i * cols + c]) * Double(ref[r * cols + c]) }
                        yRef[i * rows + r] = s
                        let g = Double(dy[i * rows + r])
                        for c in 0..<cols { dxRef[i * cols + c] += g * Double(ref[r * cols + c]) }
                    }
                }
                let (ey, ex) = (WeightTests.relativeError(y, yRef), WeightTests.relativeError(dx, dxRef))
                #expect(ey < 1e-5, "\(dtype) \(layout.name) n=\(n): forward error \(ey)")
                #expect(ex < 1e-5, "\(dtype) \(layout.name) n=\(n): backward error \(ex)")
            }
            withExtendedLifetime(bytes) {}
        }
    }

    /// A fused tensor's row slice (GPT-2's q/k/v inside c_attn) reads only its rows, in both layouts.
    @Test func rowSliceOfFusedMatrix() throws {
        for layout in [StorageLayout.rowMajor, .conv1D] {
            let (w, bytes, ref) = try WeightTests.matrix(.f16, layout)
            let part = w.rows(64..<192)
            #expect(part.materialize().array == Array(ref[(64 * w.cols)..<(192 * w.cols)]), "\(layout.name)")
            withExtendedLifetime(bytes) {}
        }
    }

    @Test func refusesTypesWithoutAKernel() throws {
        let bytes = Bytes([UInt8](repeating: 0, count: 64))
        #expect(throws: WilKEError.uncomputableDType(tensor: "w", dtype: DType.iq4_nl.name)) {
            try bytes.data.withUnsafeBytes {
                try Weight(name: "w", dtype: .iq4_nl, shape: [1, 32], layout: .rowMajor, bytes: $0, owner: bytes)
            }
        }
    }
}
