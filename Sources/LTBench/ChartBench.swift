import Foundation
import LTPlot

/// The chart `ltctl watch` redraws up to 10 times a second: two RMSE series on a 100×30 terminal, in colour and
/// braille, for runs of several lengths. What a classroom's server spends per watcher and redraw.
enum ChartBenchmarks {
    static func run() {
        print("| chart (2 series, 100 × 22 cells, colour, braille) | points per series | renders | µs per render | bytes per render |")
        print("|---|---:|---:|---:|---:|")
        for points in [200, 2_000, 20_000] {
            let keras = (0..<points).map { 20 + 10 * exp(-Double($0) / Double(points / 4)) + Double($0 % 3) }
            let validation = (0..<points).map { 18 + 12 * exp(-Double($0) / Double(points / 5)) }
            let series = [(name: "Keras RMSE (running, before each update)", values: keras),
                          (name: "validation RMSE (after the update)", values: validation)]
            let renders = 2_000
            var bytes = 0
            let start = DispatchTime.now().uptimeNanoseconds
            for _ in 0..<renders {
                bytes &+= TerminalChart.render(series: series, width: 100, height: 22, color: true).utf8.count
            }
            let micros = Double(DispatchTime.now().uptimeNanoseconds - start) / 1_000 / Double(renders)
            print("| `ltctl watch`'s chart | \(points) | \(renders) | \(String(format: "%.1f", micros)) | \(bytes / renders) |")
        }
    }
}
