import ArgumentParser
import Foundation
import Formats
import WilKE

extension RootCommand {
    struct Compare: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Overlay the scores of several `wilke eval` runs in one figure (a panel per score).",
            discussion: """
                Reads each run directory's summary.json (a run still going shows what it has measured) and writes \
                one SVG: S, ES, GS, LS, ERS and ORS against the number of edits on a log scale, a line per run, \
                named by its directory unless --names says otherwise.

                  wilke compare runs/wilke-128 runs/wilke-ns-128 runs/alphaedit-128 -o overlay-128.svg
                  wilke compare runs/a runs/b --names "WilKE,AlphaEdit" -o ab.svg --force
                """)

        @Argument(help: "Evaluation directories written by `wilke eval --out`.") var runs: [String]
        @Option(name: .shortAndLong, help: "Output SVG file.") var output: String
        @Option(help: "Comma-separated legend names, one per run (default: the directory names).") var names: String?
        @Flag(help: "Overwrite --output if it exists.") var force = false

        func validate() throws {
            guard !runs.isEmpty else { throw ValidationError("give at least one run directory") }
            if let n = names, n.split(separator: ",", omittingEmptySubsequences: false).count != runs.count {
                throw ValidationError("--names has \(n.split(separator: ",", omittingEmptySubsequences: false).count) names for \(runs.count) runs")
            }
        }

        func run() throws {
            let labels = names.map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
                ?? runs.map { URL(fileURLWithPath: $0).lastPathComponent }
            let series = try zip(labels, runs).map { label, dir in
                (name: label, rows: try naming(dir) { try EvalDirectory(dir).readCheckpoints() })
            }
            let svg = Array(EvalPlots.overlay(series).utf8)
            try naming(output) { try OutputFile.write(svg, to: output, overwrite: force) }
            printErr("wrote \(output): \(runs.count) run(s), a panel per score")
        }
    }
}
