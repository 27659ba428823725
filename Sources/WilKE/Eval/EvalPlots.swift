import Foundation

/// The evaluation's three figures, drawn from the run's log (so a finished or resumed run redraws them):
/// the table's metrics against the number of edits (log₂ axis, the paper's Table 1 as curves), the
/// Frobenius norm of every edited weight matrix after each edit and roll-back (the paper's
/// "toxicity build-up" figure), and how often each layer was chosen.
public enum EvalPlots {
    public static let files = ["metrics.svg", "norms.svg", "layers.svg"]

    /// File name → SVG document.
    public static func render(_ log: [EvalLogEntry], rows: [CheckpointScores], method: EditMethod) -> [String: String] {
        let name = method.rawValue
        let metrics: [(String, KeyPath<CheckpointScores, Double>)] = [
            ("S", \.s), ("ES", \.es), ("GS", \.gs), ("LS", \.ls), ("ERS", \.ers), ("ORS", \.ors)]
        let metricSeries = metrics.map { label, key in
            SVGChart.Series(name: label, points: rows.map { (Double($0.n), $0[keyPath: key]) })
        }
        var byLayer: [Int: [(x: Double, y: Double)]] = [:]
        for e in log {
            for (k, v) in e.norms ?? [:] { if let l = Int(k) { byLayer[l, default: []].append((Double(e.index), v)) } }
        }
        let normSeries = byLayer.keys.sorted().map { SVGChart.Series(name: "layer \($0)", points: byLayer[$0]!) }
        var counts: [Int: Int] = [:]
        for e in log { counts[e.layer, default: 0] += 1 }
        let layerBars = counts.keys.sorted().map { (label: String($0), value: Double(counts[$0]!)) }
        return [
            "metrics.svg": SVGChart.lines(title: "\(name): lifelong editing scores", xLabel: "number of edits (log scale)",
                                          yLabel: "score", series: metricSeries, logX: true, yRange: 0...1),
            "norms.svg": SVGChart.lines(title: "\(name): norm of each edited MLP down-projection",
                                        xLabel: "number of edits", yLabel: "Frobenius norm ||W||", series: normSeries, logX: false),
            "layers.svg": SVGChart.bars(title: "\(name): layer chosen per edit", xLabel: "layer", yLabel: "edits", bars: layerBars),
        ]
    }

    /// Several runs in one figure: a panel per score (S, ES, GS, LS, ERS, ORS) against the number of
    /// edits, a line per run, so methods are compared at the same checkpoints (issue #13's overlay).
    public static func overlay(_ runs: [(name: String, rows: [CheckpointScores])]) -> String {
        let metrics: [(String, KeyPath<CheckpointScores, Double>)] = [
            ("S", \.s), ("ES", \.es), ("GS", \.gs), ("LS", \.ls), ("ERS", \.ers), ("ORS", \.ors)]
        let charts = metrics.map { label, key in
            (title: label, series: runs.map { run in
                SVGChart.Series(name: run.name, points: run.rows.map { (Double($0.n), $0[keyPath: key]) })
            })
        }
        return SVGChart.panels(charts, columns: 3, xLabel: "number of edits (log scale)", yLabel: "score", logX: true,
                               yRange: 0...1)
    }
}
