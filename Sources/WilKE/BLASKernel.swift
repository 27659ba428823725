import Foundation

/// Debian's OpenBLAS 0.3.21 does not recognise some current Xeons and falls back to its generic SSE3
/// ("Prescott") kernels, about 3x slower in sgemm than the AVX-512 ones the CPU can run. The kernel is
/// chosen when the library loads, so the only fix is to start the process again with
/// OPENBLAS_CORETYPE set. This decides whether that is needed; the Tool does the re-exec.
public enum BLASKernel {
    /// The OPENBLAS_CORETYPE to restart with, or nil when the current kernel is fine, the user chose one,
    /// or we already restarted once.
    public static func betterCoreType(environment: [String: String] = ProcessInfo.processInfo.environment) -> String? {
        guard environment["OPENBLAS_CORETYPE"] == nil, environment["WILKE_BLAS_REEXEC"] == nil,
              environment["WILKE_NO_BLAS_REEXEC"] == nil else { return nil }
        let core = BLAS.coreName.lowercased()
        guard core == "prescott" || core == "katmai" || core == "core2" || core.isEmpty else { return nil }
        let flags = cpuFlags()
        if ["avx512f", "avx512bw", "avx512dq", "avx512vl"].allSatisfy(flags.contains) { return "SkylakeX" }
        if ["avx2", "fma"].allSatisfy(flags.contains) { return "Haswell" }
        return nil
    }

    static func cpuFlags() -> Set<String> {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") }),
              let colon = line.firstIndex(of: ":") else { return [] }
        return Set(line[line.index(after: colon)...].split(separator: " ").map(String.init))
    }
}
