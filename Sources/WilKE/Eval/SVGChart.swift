import Foundation

/// Minimal SVG charts for the evaluation's figures: a line chart (optionally log₂ x axis) and a bar
/// chart. Self-contained documents (no scripts, no external fonts) so they open in any browser.
public enum SVGChart {
    public struct Series: Sendable {
        public var name: String
        public var points: [(x: Double, y: Double)]
        public init(name: String, points: [(x: Double, y: Double)]) { self.name = name; self.points = points }
    }

    /// Plot area in pixels inside a 720 × 420 canvas; the legend sits to the right of it.
    static let width = 720.0, height = 420.0
    static let left = 70.0, right = 560.0, top = 40.0, bottom = 360.0
    static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                          "#bcbd22", "#17becf"]
    /// Dash patterns for the second and third round through the palette, so up to 30 series (a WilKE
    /// run can touch every scanned layer) stay told apart.
    static let dashes = ["", "8 4", "2 3"]

    /// Colour and dash of series `i`: the palette first solid, then dashed, then dotted.
    static func stroke(_ i: Int) -> (color: String, dash: String) {
        (palette[i % palette.count], dashes[(i / palette.count) % dashes.count])
    }

    static func dashAttribute(_ dash: String) -> String { dash.isEmpty ? "" : " stroke-dasharray=\"\(dash)\"" }

    /// A line chart with one polyline (and a dot per point) per series.
    /// - logX: log₂ x axis with ticks at the powers of two (the evaluation's checkpoints 1, 2, 4, …).
    /// - yRange: fixed y range (e.g. 0...1 for scores); nil fits the data with some headroom.
    public static func lines(title: String, xLabel: String, yLabel: String, series: [Series], logX: Bool,
                             yRange: ClosedRange<Double>? = nil) -> String {
        document(linesBody(title: title, xLabel: xLabel, yLabel: yLabel, series: series, logX: logX, yRange: yRange))
    }

    /// Several line charts in one document, `columns` to a row, each in its own 720 × 420 cell (the
    /// overlay of several evaluation runs: one panel per score).
    public static func panels(_ charts: [(title: String, series: [Series])], columns: Int, xLabel: String,
                              yLabel: String, logX: Bool, yRange: ClosedRange<Double>? = nil) -> String {
        let cols = max(1, min(columns, charts.count)), rowCount = (charts.count + cols - 1) / cols
        var body = ""
        for (i, c) in charts.enumerated() {
            body += String(format: "<g transform=\"translate(%.0f %.0f)\">\n", Double(i % cols) * width, Double(i / cols) * height)
            body += linesBody(title: c.title, xLabel: xLabel, yLabel: yLabel, series: c.series, logX: logX, yRange: yRange)
            body += "</g>\n"
        }
        return document(body, width: Double(cols) * width, height: Double(max(rowCount, 1)) * height)
    }

    static func linesBody(title: String, xLabel: String, yLabel: String, series: [Series], logX: Bool,
                          yRange: ClosedRange<Double>?) -> String {
        let xs = series.flatMap { $0.points.map(\.x) }.filter { !logX || $0 > 0 }
        let ys = series.flatMap { $0.points.map(\.y) }
        let xMin = xs.min() ?? 1, xMax = max(xs.max() ?? 1, xMin)
        let yr = yRange ?? fitted(ys)
        let fx = xMap(xMin, xMax, logX: logX)
        let fy = { (y: Double) in bottom - (y - yr.lowerBound) / (yr.upperBound - yr.lowerBound) * (bottom - top) }
        var body = frame(title: title, xLabel: xLabel, yLabel: yLabel)
        let xTicks = logX ? powersOfTwo(xMin, xMax) : linearTicks(xMin...xMax)
        for t in xTicks { body += tick(x: fx(t), label: label(t)) }
        for t in linearTicks(yr) { body += tick(y: fy(t), label: label(t)) }
        for (i, s) in series.enumerated() {
            let (color, dash) = stroke(i)
            let pts = s.points.filter { !logX || $0.x > 0 }.map { (fx($0.x), fy($0.y)) }
            body += "<polyline class=\"series\" data-name=\"\(escape(s.name))\" fill=\"none\" stroke=\"\(color)\"\(dashAttribute(dash)) stroke-width=\"2\" points=\""
                + pts.map { String(format: "%.2f,%.2f", $0.0, $0.1) }.joined(separator: " ") + "\"/>\n"
            for p in pts { body += String(format: "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"3\" fill=\"%@\"/>\n", p.0, p.1, color) }
            body += legend(i, s.name, color, dash)
        }
        return body
    }

    /// A bar chart with one labelled bar per entry, in order; y starts at 0.
    public static func bars(title: String, xLabel: String, yLabel: String, bars: [(label: String, value: Double)]) -> String {
        let yr = 0...niceCeiling(max(bars.map(\.value).max() ?? 1, 1))
        let fy = { (y: Double) in bottom - y / yr.upperBound * (bottom - top) }
        var body = frame(title: title, xLabel: xLabel, yLabel: yLabel)
        for t in linearTicks(yr) { body += tick(y: fy(t), label: label(t)) }
        let slot = (right - left) / Double(max(bars.count, 1))
        for (i, b) in bars.enumerated() {
            let x = left + Double(i) * slot + slot * 0.1
            body += String(format: "<rect class=\"bar\" data-label=\"%@\" data-value=\"%g\" x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"%@\"/>\n",
                           escape(b.label), b.value, x, fy(b.value), slot * 0.8, bottom - fy(b.value), palette[0])
            body += String(format: "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\" font-size=\"11\">%@</text>\n",
                           x + slot * 0.4, bottom + 16, escape(b.label))
        }
        return document(body)
    }

    // MARK: pieces

    static func xMap(_ lo: Double, _ hi: Double, logX: Bool) -> (Double) -> Double {
        if logX {
            let a = log2(lo), b = max(log2(hi), a + 1)
            return { left + (log2($0) - a) / (b - a) * (right - left) }
        }
        let b = hi > lo ? hi : lo + 1
        return { left + ($0 - lo) / (b - lo) * (right - left) }
    }

    static func fitted(_ ys: [Double]) -> ClosedRange<Double> {
        guard let lo = ys.min(), let hi = ys.max() else { return 0...1 }
        if hi == lo { return (lo - 1)...(hi + 1) }
        let pad = (hi - lo) * 0.1
        return (lo - pad)...(hi + pad)
    }

    static func powersOfTwo(_ lo: Double, _ hi: Double) -> [Double] {
        var out: [Double] = [], t = 1.0
        while t < lo { t *= 2 }
        while t <= hi { out.append(t); t *= 2 }
        return out
    }

    /// About five evenly spaced round values covering `r`.
    static func linearTicks(_ r: ClosedRange<Double>) -> [Double] {
        let span = r.upperBound - r.lowerBound
        guard span > 0 else { return [r.lowerBound] }
        let step = niceCeiling(span / 5)
        var t = (r.lowerBound / step).rounded(.up) * step, out: [Double] = []
        while t <= r.upperBound + step * 1e-9 { out.append(t); t += step }
        return out
    }

    /// The smallest of 1, 2, 5 × 10ᵏ that is ≥ x (x > 0).
    static func niceCeiling(_ x: Double) -> Double {
        let p = pow(10, floor(log10(x)))
        for m in [1.0, 2, 5, 10] where m * p >= x * (1 - 1e-12) { return m * p }
        return 10 * p
    }

    static func label(_ v: Double) -> String {
        v == v.rounded() && abs(v) < 1e6 ? String(Int(v)) : String(format: "%.3g", v)
    }

    static func frame(title: String, xLabel: String, yLabel: String) -> String {
        var s = String(format: "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" fill=\"white\" stroke=\"#333\"/>\n",
                       left, top, right - left, bottom - top)
        s += String(format: "<text x=\"%.0f\" y=\"24\" text-anchor=\"middle\" font-size=\"16\">%@</text>\n", (left + right) / 2, escape(title))
        s += String(format: "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\" font-size=\"13\">%@</text>\n",
                    (left + right) / 2, bottom + 40, escape(xLabel))
        s += String(format: "<text x=\"18\" y=\"%.0f\" text-anchor=\"middle\" font-size=\"13\" transform=\"rotate(-90 18 %.0f)\">%@</text>\n",
                    (top + bottom) / 2, (top + bottom) / 2, escape(yLabel))
        return s
    }

    static func tick(x: Double, label: String) -> String {
        String(format: "<line x1=\"%.2f\" y1=\"%.0f\" x2=\"%.2f\" y2=\"%.0f\" stroke=\"#ddd\"/>\n", x, top, x, bottom)
            + String(format: "<text class=\"xtick\" x=\"%.2f\" y=\"%.0f\" text-anchor=\"middle\" font-size=\"11\">%@</text>\n",
                     x, bottom + 16, label)
    }

    static func tick(y: Double, label: String) -> String {
        String(format: "<line x1=\"%.0f\" y1=\"%.2f\" x2=\"%.0f\" y2=\"%.2f\" stroke=\"#ddd\"/>\n", left, y, right, y)
            + String(format: "<text class=\"ytick\" x=\"%.0f\" y=\"%.2f\" text-anchor=\"end\" font-size=\"11\">%@</text>\n",
                     left - 6, y + 4, label)
    }

    static func legend(_ i: Int, _ name: String, _ color: String, _ dash: String) -> String {
        let y = top + 10 + Double(i) * 20
        return String(format: "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"%@\"%@ stroke-width=\"3\"/>\n",
                      right + 15, y, right + 40, y, color, dashAttribute(dash))
            + String(format: "<text x=\"%.0f\" y=\"%.0f\" font-size=\"12\">%@</text>\n", right + 46, y + 4, escape(name))
    }

    static func document(_ body: String, width w: Double = width, height h: Double = height) -> String {
        String(format: "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" font-family=\"sans-serif\">\n",
               w, h, w, h) + body + "</svg>\n"
    }

    static func escape(_ s: String) -> String {
        var out = ""
        for ch in s {
            switch ch {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            default: out.append(ch)
            }
        }
        return out
    }
}
