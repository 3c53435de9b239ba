import Foundation
import Testing
import LTPlot

/// Writes docs/images/colab-e4-b4.svg (and colab-e4-b4-animated.svg) from the golden trace, when asked:
///     LTPLOT_WRITE_DOCS=1 swift test --filter DocsImage && scripts/render-docs-images
/// Off by default, so an ordinary test run never touches the working tree.
@Suite struct DocsImageTests {
    @Test(.enabled(if: ProcessInfo.processInfo.environment["LTPLOT_WRITE_DOCS"] == "1", "set LTPLOT_WRITE_DOCS=1 to rewrite docs/images"))
    func writeReadmeImages() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let images = root.appendingPathComponent("docs/images")
        try FileManager.default.createDirectory(at: images, withIntermediateDirectories: true)
        let run = try GoldenRun.load()
        try SVGPlot.render(run).write(to: images.appendingPathComponent("colab-e4-b4.svg"), atomically: true, encoding: .utf8)
        try SVGPlot.render(run, animate: true).write(to: images.appendingPathComponent("colab-e4-b4-animated.svg"), atomically: true, encoding: .utf8)
        let chart = TerminalChart.render(series: TerminalChartTests.series(run), width: 72, height: 12, color: false)
        try chart.write(to: images.appendingPathComponent("colab-e4-b4-chart.txt"), atomically: true, encoding: .utf8)
    }
}
