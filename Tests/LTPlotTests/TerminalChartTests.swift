import Foundation
import Testing
@testable import LTPlot

@Suite struct TerminalChartTests {
    static let snapshot = GoldenRun.fixtures.appendingPathComponent("terminal-chart-60x12.txt")

    static func series(_ run: TrainingRun) -> [(name: String, values: [Double])] {
        [("Keras RMSE (running, before update)", run.steps.map(\.kerasRmse)),
         ("validation RMSE (after update)", run.steps.map(\.valRmse))]
    }

    /// The chart of the Colab example at 60 × 12 without colour, against a snapshot that was checked by eye.
    /// To re-record it after a deliberate change: LTPLOT_RECORD_SNAPSHOTS=1 swift test --filter TerminalChart, then look at it.
    @Test func colabSnapshotAt60x12() throws {
        let run = try GoldenRun.load()
        let chart = TerminalChart.render(series: Self.series(run), width: 60, height: 12, color: false)
        if ProcessInfo.processInfo.environment["LTPLOT_RECORD_SNAPSHOTS"] == "1" {
            try chart.write(to: Self.snapshot, atomically: true, encoding: .utf8)
        }
        let expected = try String(contentsOf: Self.snapshot, encoding: .utf8)
        #expect(chart == expected, "terminal chart differs from its snapshot:\n\(chart)")
    }

    @Test("trailing spaces go, byte by byte, as if Character by Character, and nothing else does")
    func trimTrailingSpaces() {
        let samples = ["", " ", "   ", "a", "a ", " a", "a  b   ", "\u{2801}\u{28FF}  ", "\u{1B}[31m\u{2840}\u{1B}[0m   ",
                       "e\u{301} ", " \u{301}", "  \u{301}  ", "\u{2500}\u{2518} x", "\t ", "\u{00A0} "]
        for sample in samples {
            var byCharacter = Substring(sample)
            while byCharacter.last == " " { byCharacter = byCharacter.dropLast() }
            #expect(TerminalChart.trimTrailingSpaces(sample) == String(byCharacter), "for \(sample.debugDescription)")
        }
        #expect(TerminalChart.trimTrailingSpaces("\u{2801} \u{2802}    ") == "\u{2801} \u{2802}")
    }

    @Test func everyLineFitsTheWidth() throws {
        let run = try GoldenRun.load()
        for width in [16, 30, 60, 80, 133] {
            for color in [false, true] {
                let chart = TerminalChart.render(series: Self.series(run), width: width, height: 8, color: color)
                let plain = chart.replacingOccurrences(of: "\u{1B}\\[[0-9;]*m", with: "", options: .regularExpression)
                let lines = plain.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
                #expect(lines.count >= 8 + 3)
                for line in lines { #expect(line.count <= width, "width \(width): \(line.count) chars: \(line)") }
                #expect(chart.contains("\u{1B}[") == color)
            }
        }
    }

    @Test func curvesGoWhereTheValuesAre() {
        // A falling line from 10 to 0 over 5 points: the top-left and bottom-right cells hold dots, the others corners do not.
        let chart = TerminalChart.render(series: [("down", [10, 7.5, 5, 2.5, 0])], width: 30, height: 4, color: false)
        let rows = chart.split(separator: "\n").map { Array($0) }
        let axis = rows[0].firstIndex(of: "┤") ?? 0
        func cell(_ r: Int, _ c: Int) -> Character { c < rows[r].count ? rows[r][c] : " " }
        let last = rows[0].count > axis + 1 ? 30 - 1 : 0
        #expect(cell(0, axis + 1) != " ")
        #expect(cell(3, axis + 1) == " ")
        #expect(cell(0, last) == " ")
        #expect(rows[3].count == 30 && rows[3].last != " ")
    }

    @Test func nonFiniteValuesAreSkipped() {
        let chart = TerminalChart.render(series: [("a", [1, .nan, 3, .infinity, 2])], width: 40, height: 4, color: false)
        #expect(chart.contains("(2 non-finite values not drawn)"))
        #expect(!chart.contains("nan"))
        #expect(TerminalChart.render(series: [("a", [.nan])], width: 40, height: 4, color: false) == "(no finite values to chart)\n")
    }
}

/// Charts for people who cannot see them, or see colours differently.
@Suite struct AccessibleChartTests {
    @Test func theTrendInWordsForTheTwelvePoints() throws {
        let run = try GoldenRun.load()
        let text = TrendSummary.rmse(keras: run.steps.map(\.kerasRmse), validation: run.steps.map(\.valRmse), epochs: run.steps.map(\.epoch))
        #expect(text == "validation RMSE fell from 18.77 to 12.62 over 12 steps; Keras's running RMSE rose within each of the 4 epochs, "
            + "starting again lower at each new epoch, and ended at 13.40")
        #expect(TrendSummary.rmse(keras: [23.1405], validation: [21.8363], epochs: [1])
            == "validation RMSE stayed at 21.84 over 1 step; Keras's running RMSE stayed at 23.14")
        #expect(TrendSummary.rmse(keras: [], validation: [], epochs: []) == "no steps yet")
    }

    @Test func asciiChartsUseOnlyASCII() throws {
        let run = try GoldenRun.load()
        for width in [16, 60, 100] {
            let chart = TerminalChart.render(series: TerminalChartTests.series(run), width: width, height: 10, color: false, ascii: true)
            #expect(chart.unicodeScalars.allSatisfy { $0.isASCII }, "\(chart)")
            let lines = chart.split(separator: "\n")
            #expect(lines.allSatisfy { $0.count <= width })
            #expect(chart.contains("*") && chart.contains("o"))
            #expect(lines.contains { $0.hasPrefix("*** Keras") })
        }
        // The marks go where the values are: a falling line from the top-left cell to the bottom-right one.
        let falling = TerminalChart.render(series: [("down", [10, 7.5, 5, 2.5, 0])], width: 30, height: 4, color: false, ascii: true)
        let rows = falling.split(separator: "\n").map { Array($0) }
        #expect(rows[0].contains("*") && !rows[3].prefix(10).contains("*") && rows[3].last == "*")
    }

    @Test func coloursAreOkabeIto() throws {
        let run = try GoldenRun.load()
        let chart = TerminalChart.render(series: TerminalChartTests.series(run), width: 60, height: 8, color: true)
        #expect(chart.contains("\u{1B}[38;5;166m") && chart.contains("\u{1B}[38;5;74m"))
        let svg = SVGPlot.render(run)
        #expect(svg.contains("#d55e00") && svg.contains("#0072b2"))
        for old in ["#c53030", "#2b6cb0"] { #expect(!svg.contains(old)) }
        #expect(svg.contains("<desc>") && svg.contains("validation RMSE fell from 18.77 to 12.62 over 12 steps"))
    }
}
