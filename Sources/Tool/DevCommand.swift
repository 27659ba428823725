import ArgumentParser
import Foundation
import Formats
import WilKE

extension RootCommand {
    /// Benchmark plumbing used by `make bench` (hidden from --help): generating large files and timing
    /// kernels, so the benchmark needs no other tool.
    struct Dev: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Benchmark helpers (used by `make bench`).",
            shouldDisplay: false,
            subcommands: [GenSafetensors.self, BenchCodec.self, BLASInfo.self, BenchForward.self, GenPatch.self, Accept.self,
                          EvalFigures.self, Estimates.self, GenLlama.self])
    }
}

extension RootCommand.Dev {
    struct GenSafetensors: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "gen-safetensors", abstract: "Write a synthetic safetensors file of N F16 tensors totalling about SIZE bytes.")

        @Argument(help: "Output file.") var output: String
        @Option(help: "Number of tensors.") var tensors = 2000
        @Option(help: "Total bytes (approximate).") var bytes: Int = 4 << 30
        @Flag(help: "Replace an existing output.") var force = false

        func run() throws {
            let per = max(2, bytes / tensors / 2 / 1024 * 1024)  // elements per tensor, [per/1024, 1024]
            let entries = (0..<tensors).map { i in
                SafetensorsWriter.Entry(name: String(format: "model.layers.%d.block.%d.weight", i / 10, i % 10), dtype: .f16,
                                        shape: [per / 1024, 1024], source: .fill { dst in
                    // A cheap non-constant pattern; contents do not matter to the benchmark.
                    let words = dst.bindMemory(to: UInt64.self)
                    for j in 0..<words.count { words[j] = (UInt64(truncatingIfNeeded: j &+ i) &* 0x9E37_79B9_7F4A_7C15) & 0x3BFF_3BFF_3BFF_3BFF }
                })
            }
            try SafetensorsWriter.write(entries, metadata: ["format": "pt"], to: output, overwrite: force)
        }
    }

    struct BenchCodec: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "bench-codec", abstract: "Dequantization throughput per type and memory bandwidth, as JSON lines.")

        @Option(help: "Elements per run.") var elements = 16 << 20
        @Option(help: "Repeats (the fastest counts).") var repeats = 5

        func run() throws {
            // Memory bandwidth reference: a large memcpy, reported as bytes written per second.
            let n = elements * 4
            let a = UnsafeMutableRawPointer.allocate(byteCount: n, alignment: 64)
            let b = UnsafeMutableRawPointer.allocate(byteCount: n, alignment: 64)
            defer { a.deallocate(); b.deallocate() }
            memset(a, 1, n); memset(b, 2, n)
            var best = Double.infinity
            for _ in 0..<repeats {
                let t0 = DispatchTime.now().uptimeNanoseconds
                memcpy(b, a, n)
                best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
            }
            print(#"{"kernel":"memcpy","gb_per_s":\#(String(format: "%.2f", Double(n) / best / 1e9))}"#)
            let types: [DType] = [.f32, .f16, .bf16, .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K]
            for t in types {
                let r = try TensorCodec.benchmarkDequantize(t, elements: elements, repeats: repeats)
                let inBytes = t.byteCount(elements: (elements + t.blockSize - 1) / t.blockSize * t.blockSize) ?? 0
                print(#"{"kernel":"dequantize","type":"\#(t.name)","gb_per_s_out":\#(String(format: "%.2f", r.gbPerSecond)),"gb_per_s_in":\#(String(format: "%.2f", Double(inBytes) / r.seconds / 1e9)),"seconds":\#(String(format: "%.4f", r.seconds))}"#)
            }
        }
    }
}

extension RootCommand.Dev {
    struct BLASInfo: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "blas", abstract: "Print the OpenBLAS kernel in use; --peak measures sgemm GFLOP/s.")
        @Flag(help: "Measure sgemm throughput (JSON lines): a large square product and an edit step's shapes.") var peak = false

        func run() {
            guard peak else {
                print("openblas core: \(BLAS.coreName) (OPENBLAS_CORETYPE=\(ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] ?? "unset"))")
                return
            }
            // [m, n, k]: the peak, then SmolLM2's MLP up/down projections on ~176 positions (an edit step).
            for (m, n, k) in [(1024, 1024, 1024), (176, 1536, 576), (176, 576, 1536)] {
                let a = [Float](repeating: 0.5, count: m * k), b = [Float](repeating: 0.25, count: k * n)
                var c = [Float](repeating: 0, count: m * n)
                var best = Double.infinity
                for _ in 0..<7 {
                    let s = DispatchTime.now().uptimeNanoseconds
                    let reps = max(1, 2_000_000_000 / (2 * m * n * k))
                    for _ in 0..<reps {
                        BLAS.sgemm(transA: false, transB: false, m: m, n: n, k: k, a: a, lda: k, b: b, ldb: n, c: &c, ldc: n)
                    }
                    best = min(best, Double(DispatchTime.now().uptimeNanoseconds - s) / 1e9 / Double(reps))
                }
                print(#"{"kernel":"sgemm","m":\#(m),"n":\#(n),"k":\#(k),"gflops":\#(String(format: "%.1f", 2 * Double(m * n * k) / best / 1e9)),"core":"\#(BLAS.coreName)"}"#)
            }
        }
    }
}

extension RootCommand.Dev {
    struct BenchForward: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "bench-forward", abstract: "Prefill and generation throughput of a model, as JSON.")

        @Argument(help: "Checkpoint.") var model: String
        @Option(help: "Rows in the prefill batch.") var rows = 22
        @Option(help: "Tokens per row.") var tokens = 16
        @Option(help: "New tokens to generate.") var generate = 32
        @Option(help: "Repeats (the median counts).") var repeats = 5

        func run() throws {
            let t0 = DispatchTime.now().uptimeNanoseconds
            let loaded = try LoadedModel(path: model)
            let loadSeconds = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
            var rng = SeededGenerator(seed: 7)
            let seqs = (0..<rows).map { _ in (0..<tokens).map { _ in Int.random(in: 100..<loaded.config.vocabSize, using: &rng) } }
            func median(_ body: () throws -> Void) rethrows -> Double {
                var ts: [Double] = []
                for _ in 0..<repeats {
                    let s = DispatchTime.now().uptimeNanoseconds
                    try body()
                    ts.append(Double(DispatchTime.now().uptimeNanoseconds - s) / 1e9)
                }
                return ts.sorted()[ts.count / 2]
            }
            // Logits at every position (what a framework forward returns), and only at the last token.
            let all = ForwardBatch.allLogits(seqs)
            let last = ForwardBatch(sequences: seqs, logitsAt: seqs.indices.map { TokenPosition(row: $0, pos: tokens - 1) })
            let tAll = try median { _ = try loaded.model.forward(all) }
            let tLast = try median { _ = try loaded.model.forward(last) }
            // Matrix-product work of one forward of each kind (what the FLOP floor is computed from).
            var o = BLAS.operations
            _ = try loaded.model.forward(all)
            let flopsAll = BLAS.operations - o
            o = BLAS.operations
            _ = try loaded.model.forward(last)
            let flopsLast = BLAS.operations - o
            let prompt = try loaded.encodePrompt("The Eiffel Tower is located in the city of")
            var produced = 0
            let tGen = try median {
                var g = SeededGenerator(seed: 1)
                produced = try Generator(model: loaded.model).generate(prompts: [prompt], maxNewTokens: generate, rng: &g)[0].count
            }
            var usage = rusage()
            getrusage(RUSAGE_SELF.rawValue, &usage)
            let n = Double(rows * tokens)
            print(#"{"load_seconds":\#(loadSeconds),"prefill_all_logits_tokens_per_s":\#(n / tAll),"prefill_last_logits_tokens_per_s":\#(n / tLast),"generate_tokens_per_s":\#(Double(produced) / tGen),"generated":\#(produced),"peak_rss_mib":\#(Double(usage.ru_maxrss) / 1024),"blas_core":"\#(BLAS.coreName)","blas_flops_all_logits":\#(flopsAll),"blas_flops_last_logits":\#(flopsLast)}"#)
        }
    }
}

extension RootCommand.Dev {
    struct EvalFigures: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "eval-figures", abstract: "Redraw the SVG figures of a `wilke eval` directory from its log (e.g. a stopped run).")

        @Argument(help: "The eval's --out directory.") var dir: String

        func run() throws {
            let d = EvalDirectory(dir)
            guard let config = try naming(dir, { try d.readConfig() }) else { throw CLIError("\(dir): no config.json (not an eval directory)") }
            let log = try naming(dir) { try d.readLog() }
            let rows = LifelongEval.table(log)
            for (file, svg) in EvalPlots.render(log, rows: rows, method: config.method) {
                try naming(dir) { try d.writeAtomically(Array(svg.utf8), to: dir + "/" + file) }
            }
            print(EvalTable.text(rows))
        }
    }
}
