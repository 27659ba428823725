import ArgumentParser
import Formats
import Patch

extension RootCommand.Dev {
    /// A random low-rank patch of a chosen size, for benchmarks and interop checks (the real edits come
    /// from `wilke edit`).
    struct GenPatch: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "gen-patch", abstract: "Write a random rank-k patch on one tensor with ‖Δ‖ = RELATIVE · ‖W‖.")

        @Argument(help: "Checkpoint the patch is for.") var model: String
        @Option(help: "Tensor to edit (stored or canonical name); default: the middle layer's ffn_down, else the largest matrix.")
        var tensor: String?
        @Option(help: "Rank.") var rank = 1
        @Option(help: "‖Δ‖_F / ‖W‖_F.") var relative = 0.01
        @Option(help: "Seed.") var seed: UInt64 = 1
        @Option(help: "Float type a quantized tensor is promoted to: f32, f16 or bf16.") var promote: FloatDType = .f32
        @Option(name: .shortAndLong, help: "Output .wpatch.") var output: String
        @Flag(help: "Replace an existing output.") var force = false

        func run() throws {
            let ckpt = try naming(model) { try Checkpoint.open(model) }
            let matrices = ckpt.tensors.filter { $0.shape.count == 2 && $0.layout != .vector }
            let middle = (ckpt.config?.nLayer).map { "blk.\($0 / 2).ffn_down.weight" }
            guard let t = tensor.flatMap(ckpt.tensor) ?? middle.flatMap(ckpt.tensor)
                    ?? matrices.max(by: { $0.elementCount < $1.elementCount }) else {
                throw CLIError("\(model): no tensor \(tensor ?? "to edit")")
            }
            let base = ckpt.tensorBytes(t)
            let w = try ckpt.floats(t)
            let norm = w.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
            var state = seed
            func normal() -> Float {
                var s = 0.0
                for _ in 0..<12 { state = state &* 6364136223846793005 &+ 1442695040888963407; s += Double(state >> 11) * 0x1p-53 }
                return Float(s - 6)
            }
            var u = (0..<(base.rows * rank)).map { _ in normal() }, v = (0..<(base.cols * rank)).map { _ in normal() }
            // ‖U Vᵀ‖_F ≈ sqrt(rank · rows · cols) for i.i.d. normal factors.
            let c = Float((relative * norm / Double(rank * base.rows * base.cols).squareRoot()).squareRoot())
            for i in u.indices { u[i] *= c }
            for j in v.indices { v[j] *= c }
            var b = PatchBuilder(architecture: ckpt.patchArchitecture, format: ckpt.patchFormat, metadata: ["tool": "wilke dev gen-patch"])
            try b.add(tensor: t.name, layout: t.stepLayout, base: base, u: u, v: v, rank: rank, promoteTo: promote.dtype)
            let p = b.build()
            try writePatch(p, to: output, overwrite: force)
            print("\(p.id) \(t.name)")
        }
    }
}
