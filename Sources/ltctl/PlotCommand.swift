import ArgumentParser
import Foundation
import LTData
import LTClient
import LTPlot
import LTProtocol

extension LTCtl {
    struct Plot: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Draw a job as one SVG file: the data and the line, the RMSE curves, the (w, b) path.",
            discussion: """
            Three panels: the training points with the line after each step (faint, light to dark), the final line \
            and the least-squares line (dashed); the RMSE Keras reports, the batch's own RMSE and the validation RMSE \
            after each update, against the iteration, with the epoch boundaries; and the path of (w, b) over contour \
            lines of the training MSE. The file is self-contained (no scripts, no links) and opens in any browser. \
            With --animate one line steps through the iterations instead (SVG animation, no script). Jobs of many \
            steps are sampled: at most 500 steps per panel, always the first, the last and the epoch ends. \
            A job that is still running is drawn as far as it has got.
            """)

        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var job: JobArgument
        @Option(name: .shortAndLong, help: ArgumentHelp("The SVG file to write.", valueName: "file"), completion: .file(extensions: ["svg"]))
        var output: String
        @Flag(help: "Animate the line, a cursor on the curves and a point on the path through the iterations.")
        var animate = false
        @Option(help: ArgumentHelp("The picture's width in pixels (320-20000).", valueName: "pixels"))
        var width = 960

        func validate() throws {
            guard (320...20_000).contains(width) else { throw ValidationError("--width must be within 320...20000, not \(width)") }
            guard !output.isEmpty else { throw ValidationError("-o/--output needs a file name, e.g. -o \(job.name).svg") }
        }

        func run() throws {
            try runReportingErrors {
                let history = try JobHistory.read(job: job.name, connection: connection, types: [.start, .step])
                guard let run = TrainingRun(job: job.name, history: history) else {
                    throw InputError("\(job.name) has no start event yet, so there is nothing to draw; try again in a moment")
                }
                let svg = SVGPlot.render(run, animate: animate, width: width)
                do {
                    try Data(svg.utf8).write(to: URL(fileURLWithPath: output), options: .atomic)
                } catch {
                    throw InputError("cannot write \(output): \(error.localizedDescription)")
                }
                let state = history.end?.string("state") ?? history.state
                var message = "\(job.name): wrote \(output) (\(run.steps.count) step\(run.steps.count == 1 ? "" : "s"), \(state))"
                if history.end == nil && !["finished", "cancelled", "diverged", "failed"].contains(state) {
                    message += "; the job is not over, plot again later for the rest"
                }
                FileHandle.standardError.write(Data((message + "\n").utf8))
                return .success
            }
        }
    }
}

extension TrainingRun {
    /// The picture's input from a job's `start` and `step` events; nil before the `start` event.
    init?(job: String, history: JobHistory) {
        guard let start = history.start else { return nil }
        let optimum: (w: Double, b: Double)? = {
            guard let w = start.double("optimum.w"), let b = start.double("optimum.b") else { return nil }
            return (w, b)
        }()
        var settings = EventPrinter.describeOptimizer(start.value("optimizer"))
        settings += " · \(Format.count(start.int("epochs") ?? 0, "epoch")) · batch size \(start.int("batch_size") ?? 0)"
        settings += " · \(start.int("n_train") ?? 0) points · " + EventPrinter.describeShuffle(start.value("spec.shuffle"), keras: start.value("spec.keras")?.stringValue)
        settings += " · " + (start.string("precision") ?? "float32")
        self.init(
            title: job, settings: settings,
            x: start.doubles("spec.data.x") ?? [], y: start.doubles("spec.data.y") ?? [],
            initial: (start.double("w") ?? .nan, start.double("b") ?? .nan), optimum: optimum,
            steps: history.steps.map { e in
                StepPoint(iteration: e.int("iteration") ?? 0, epoch: e.int("epoch") ?? 0, step: e.int("step") ?? 0,
                          wAfter: e.double("w_after") ?? .nan, bAfter: e.double("b_after") ?? .nan,
                          kerasRmse: e.double("rmse") ?? .nan,
                          batchRmse: e.double("batch_rmse") ?? .nan,
                          valRmse: e.double("val_rmse") ?? .nan)
            })
    }
}

/// `compare --chart`: the RMSE Keras reports and the validation RMSE after each update, drawn in the terminal, with
/// a sentence saying what the chart shows (for screen readers and braille displays; `--ascii` draws without braille).
enum RMSEChart {
    static func text(history: JobHistory, fd: Int32, color: Bool, ascii: Bool) -> String {
        let keras = history.steps.map { $0.double("rmse") ?? .nan }
        let validation = history.steps.map { $0.double("val_rmse") ?? .nan }
        guard !keras.isEmpty else { return "" }
        let columns = min(Terminal.size(fd: fd)?.columns ?? Terminal.environmentColumns ?? 80, 160)
        return "RMSE per iteration\n" + TerminalChart.render(
            series: [("Keras RMSE (running, before each update)", keras), ("validation RMSE (after the update)", validation)],
            width: columns, height: 12, color: color, ascii: ascii)
            + Format.wrapWords("In words: " + TrendSummary.rmse(keras: keras, validation: validation, epochs: history.steps.map { $0.int("epoch") ?? 1 }) + ".",
                               width: columns)
    }
}
