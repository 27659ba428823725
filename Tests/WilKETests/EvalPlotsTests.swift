import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing
@testable import WilKE

/// The evaluation's SVG figures: well-formed XML whose shapes sit where the data says.
@Suite struct EvalPlotsTests {
    /// Elements of an SVG document with their attributes, in document order (fails on malformed XML).
    final class Elements: NSObject, XMLParserDelegate {
        var found: [(name: String, attributes: [String: String])] = []
        func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
                    attributes: [String: String] = [:]) {
            found.append((name, attributes))
        }
        static func parse(_ svg: String) throws -> [(name: String, attributes: [String: String])] {
            let p = XMLParser(data: Data(svg.utf8)), d = Elements()
            p.delegate = d
            guard p.parse() else { throw WilKEError.invalidRequest("malformed SVG: \(String(describing: p.parserError))") }
            return d.found
        }
    }

    static func points(_ polyline: [String: String]) -> [(Double, Double)] {
        (polyline["points"] ?? "").split(separator: " ").map {
            let xy = $0.split(separator: ",").map { Double($0)! }
            return (xy[0], xy[1])
        }
    }

    @Test func logAxisSpacesPowersOfTwoEvenlyAndScoresSpanTheFrame() throws {
        let s = SVGChart.Series(name: "ES", points: [(1, 1), (2, 0.5), (4, 0.25), (8, 0)])
        let svg = SVGChart.lines(title: "t", xLabel: "x", yLabel: "y", series: [s], logX: true, yRange: 0...1)
        let els = try Elements.parse(svg)
        let line = try #require(els.first { $0.name == "polyline" })
        let p = Self.points(line.attributes)
        #expect(p.count == 4)
        let gaps = zip(p.dropFirst(), p).map { $0.0 - $1.0 }
        #expect(gaps.allSatisfy { abs($0 - gaps[0]) < 0.01 && $0 > 0 })
        #expect(abs(p[0].1 - SVGChart.top) < 0.01 && abs(p[3].1 - SVGChart.bottom) < 0.01)
        // y is linear: 0.5 halfway, 0.25 at three quarters down.
        #expect(abs(p[1].1 - (SVGChart.top + SVGChart.bottom) / 2) < 0.01)
        #expect(abs(p[2].1 - (SVGChart.top + 0.75 * (SVGChart.bottom - SVGChart.top))) < 0.01)
        let xticks = els.filter { $0.attributes["class"] == "xtick" }.count
        #expect(xticks == 4)
    }

    /// More series than palette colours (a WilKE run touching 15 layers): every line and its legend
    /// entry get a stroke (colour + dash) no other series has.
    @Test func manySeriesKeepDistinctStrokes() throws {
        let series = (0..<15).map { SVGChart.Series(name: "layer \($0)", points: [(1, Double($0)), (2, Double($0) + 1)]) }
        let els = try Elements.parse(SVGChart.lines(title: "t", xLabel: "x", yLabel: "y", series: series, logX: false))
        let key = { (a: [String: String]) in "\(a["stroke"] ?? "") \(a["stroke-dasharray"] ?? "solid")" }
        let lines = els.filter { $0.name == "polyline" }.map { key($0.attributes) }
        let legend = els.filter { $0.name == "line" && $0.attributes["stroke-width"] == "3" }.map { key($0.attributes) }
        #expect(lines.count == 15 && Set(lines).count == 15)
        #expect(legend == lines)
    }

    @Test func barsAreProportionalAndNamesAreEscaped() throws {
        let svg = SVGChart.bars(title: "a < b & \"c\"", xLabel: "layer", yLabel: "edits",
                                bars: [("3", 2), ("5", 4), ("<7>", 1)])
        let rects = try Elements.parse(svg).filter { $0.attributes["class"] == "bar" }
        #expect(rects.map { $0.attributes["data-label"] } == ["3", "5", "<7>"])
        let h = rects.map { Double($0.attributes["height"]!)! }
        #expect(abs(h[1] - 2 * h[0]) < 0.01 && abs(h[0] - 2 * h[2]) < 0.01)
        // Bars stand on the x axis.
        for r in rects { #expect(abs(Double(r.attributes["y"]!)! + Double(r.attributes["height"]!)! - SVGChart.bottom) < 0.01) }
    }

    @Test func evalFiguresFollowTheLog() throws {
        func entry(_ i: Int, layer: Int, norms: [String: Double]) -> EvalLogEntry {
            EvalLogEntry(index: i, caseID: i, prompt: "{} p", subject: "s", targetNew: "a", targetTrue: "b", layer: layer,
                         rollbackLayer: layer, scores: EditScores(es: 1, gs: nil, ls: nil), ers: nil, ors: nil, steps: 2 * i,
                         seconds: 1, norms: norms)
        }
        let log = [entry(1, layer: 4, norms: ["4": 10]), entry(2, layer: 6, norms: ["4": 10.5, "6": 8]),
                   entry(3, layer: 4, norms: ["4": 11, "6": 8.2])]
        let rows = [CheckpointScores(n: 1, s: 0.9, es: 1, gs: 0.8, ls: 0.9, ers: 1, ors: 1),
                    CheckpointScores(n: 2, s: 0.8, es: 1, gs: 0.7, ls: 0.8, ers: 0.5, ors: 1),
                    CheckpointScores(n: 3, s: 0.7, es: 1, gs: 0.6, ls: 0.7, ers: 0.33, ors: 0.9)]
        let figs = EvalPlots.render(log, rows: rows, method: .wilke)
        #expect(Set(figs.keys) == Set(EvalPlots.files))
        let metricLines = try Elements.parse(figs["metrics.svg"]!).filter { $0.name == "polyline" }
        #expect(metricLines.map { $0.attributes["data-name"]! } == ["S", "ES", "GS", "LS", "ERS", "ORS"])
        #expect(metricLines.allSatisfy { Self.points($0.attributes).count == 3 })
        let normLines = try Elements.parse(figs["norms.svg"]!).filter { $0.name == "polyline" }
        #expect(normLines.map { $0.attributes["data-name"]! } == ["layer 4", "layer 6"])
        #expect(normLines.map { Self.points($0.attributes).count } == [3, 2])
        // Growing norm → the line rises (smaller SVG y).
        let l4 = Self.points(normLines[0].attributes)
        #expect(l4[0].1 > l4[1].1 && l4[1].1 > l4[2].1)
        let bars = try Elements.parse(figs["layers.svg"]!).filter { $0.attributes["class"] == "bar" }
        #expect(bars.map { $0.attributes["data-label"]! } == ["4", "6"])
        #expect(bars.map { Double($0.attributes["data-value"]!)! } == [2, 1])
    }

    /// The overlay of several runs: one panel per score in a 3-column grid, a line per run in each
    /// panel, and each line's points at that run's own scores (ORS of run b at n = 4 is 0.25).
    @Test func overlayHasAPanelPerScoreAndALinePerRun() throws {
        let a = [CheckpointScores(n: 1, s: 0, es: 1, gs: 0, ls: 0, ers: 1, ors: 1),
                 CheckpointScores(n: 2, s: 0.5, es: 1, gs: 0.5, ls: 0.5, ers: 1, ors: 0.5)]
        let b = a + [CheckpointScores(n: 4, s: 0.2, es: 0.5, gs: 0.1, ls: 0.1, ers: 0.5, ors: 0.25)]
        let svg = EvalPlots.overlay([("a", a), ("b", b)])
        let els = try Elements.parse(svg)
        let root = try #require(els.first)
        #expect(root.attributes["width"] == "2160" && root.attributes["height"] == "840")
        let groups = els.filter { $0.name == "g" }.map { $0.attributes["transform"] ?? "" }
        #expect(groups == ["translate(0 0)", "translate(720 0)", "translate(1440 0)",
                           "translate(0 420)", "translate(720 420)", "translate(1440 420)"])
        let lines = els.filter { $0.name == "polyline" }
        #expect(lines.map { $0.attributes["data-name"] ?? "" } == Array(repeating: ["a", "b"], count: 6).flatMap { $0 })
        // The ORS panel is the last: run b's third point sits a quarter of the way up the frame.
        let ors = Self.points(lines[11].attributes)
        #expect(ors.count == 3)
        #expect(abs(ors[2].1 - (SVGChart.bottom - 0.25 * (SVGChart.bottom - SVGChart.top))) < 0.01)
    }
}

