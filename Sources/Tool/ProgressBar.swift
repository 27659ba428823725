import Foundation

/// Progress with ETA on stderr. On a terminal a one-line bar redrawn in place; otherwise (CI, nohup,
/// a log file) a plain line every `lineInterval` seconds and one at the end, so long work is visible
/// there too without flooding the log.
final class ProgressBar {
    private let label: String
    private let start = Date()
    private let terminal: Bool
    private var lastDraw = Date.distantPast
    /// Seconds between plain lines when stderr is not a terminal.
    static let lineInterval: TimeInterval = 5

    init(_ label: String) {
        self.label = label
        terminal = isatty(STDERR_FILENO) == 1
    }

    func update(_ done: Int, _ total: Int) {
        guard total > 0 else { return }
        let now = Date()
        guard done == total || now.timeIntervalSince(lastDraw) > (terminal ? 0.1 : Self.lineInterval) else { return }
        if !terminal {
            // The first call only starts the clock: short jobs print just their final line.
            if lastDraw == .distantPast, done < total { lastDraw = now; return }
            lastDraw = now
            let elapsed = now.timeIntervalSince(start), fraction = Double(done) / Double(total)
            let eta = done > 0 ? elapsed / fraction - elapsed : 0
            printErr(String(format: "%@ %d/%d  %3.0f%%  elapsed %@  ETA %@", label, done, total, fraction * 100,
                            formatSeconds(elapsed), formatSeconds(eta)))
            return
        }
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
