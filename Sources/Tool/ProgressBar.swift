import Foundation

/// A one-line progress bar with ETA on stderr, drawn only when stderr is a terminal; silent otherwise,
/// so logs and pipes stay clean.
final class ProgressBar {
    private let label: String
    private let start = Date()
    private let enabled: Bool
    private var lastDraw = Date.distantPast

    init(_ label: String) {
        self.label = label
        enabled = isatty(STDERR_FILENO) == 1
    }

    func update(_ done: Int, _ total: Int) {
        guard enabled, total > 0 else { return }
        let now = Date()
        guard done == total || now.timeIntervalSince(lastDraw) > 0.1 else { return }
        lastDraw = now
        let fraction = Double(done) / Double(total)
        let width = 30
        let filled = Int(fraction * Double(width))
        let elapsed = now.timeIntervalSince(start)
        let eta = done > 0 ? elapsed / fraction - elapsed : 0
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        FileHandle.standardError.write(Data(String(format: "\r%@ [%@] %d/%d  %3.0f%%  ETA %@ ", label, bar, done, total,
                                                   fraction * 100, formatSeconds(eta)).utf8))
        if done == total { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}

func formatSeconds(_ s: Double) -> String {
    guard s.isFinite, s >= 0 else { return "--" }
    if s < 60 { return String(format: "%.0fs", s) }
    if s < 3600 { return String(format: "%dm%02ds", Int(s) / 60, Int(s) % 60) }
    return String(format: "%dh%02dm", Int(s) / 3600, (Int(s) % 3600) / 60)
}

/// Writes a line to stderr (reports and warnings; stdout is for results).
func printErr(_ s: String) { FileHandle.standardError.write(Data((s + "\n").utf8)) }
