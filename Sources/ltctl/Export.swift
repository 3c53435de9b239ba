import ArgumentParser
import Foundation
import LTData
import LTClient
import LTProtocol

extension LTCtl {
    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write one CSV row per optimizer step with every field, for a spreadsheet.",
            discussion: """
            Columns: iteration, epoch, step, seq, batch_size, rows (dataset rows in feed order, space-separated, or \
            FIRST-LAST for a long contiguous batch), x, y, pred (space-separated, batches of at most 64 rows), \
            w_before, b_before, grad_w, grad_b, w_after, b_after, batch_loss, loss, rmse (Keras's running logs, before \
            the update), val_loss, val_rmse (after the update), then the optimizer's slots after the step \
            (kernel_velocity, bias_velocity, ...). Numbers are the daemon's exact text.
            """)

        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var job: JobArgument
        @Flag(help: "CSV output (the only format; accepted for clarity).") var csv = false
        @Option(name: .shortAndLong, help: ArgumentHelp("Write to this file instead of stdout.", valueName: "file"), completion: .file())
        var output: String?

        func run() throws {
            try runReportingErrors {
                let history = try JobHistory.read(job: job.name, connection: connection, types: [.step])
                let text = Self.csv(history.steps)
                if let output {
                    guard FileManager.default.createFile(atPath: output, contents: Data(text.utf8)) else {
                        throw InputError("cannot write \(output)")
                    }
                } else {
                    let out = BufferedOutput(fd: STDOUT_FILENO)
                    try out.write(text)
                    try out.flush()
                }
                return .success
            }
        }

        static let scalarColumns = ["w_before", "b_before", "grad_w", "grad_b", "w_after", "b_after",
                                    "batch_loss", "loss", "rmse", "val_loss", "val_rmse"]

        static func csv(_ steps: [Event]) -> String {
            // Slot names as the first step has them (they are the same for every step of a job).
            let slotNames: [(variable: String, name: String)] = ["kernel", "bias"].flatMap { variable in
                (steps.first?.value("slots.\(variable)")?.objectMembers ?? []).map { (variable, $0.key) }
            }
            var header = ["iteration", "epoch", "step", "seq", "batch_size", "rows", "x", "y", "pred"] + scalarColumns
            header += slotNames.map { "\($0.variable)_\($0.name)" }
            var text = header.joined(separator: ",") + "\n"
            for e in steps {
                let batch = e.value("batch")
                var rows = Format.rowIndices(batch).map(String.init).joined(separator: " ")
                if let range = batch?["range"]?.arrayValue, range.count == 2,
                   let first = range[0].intValue, let end = range[1].intValue {
                    rows = "\(first)-\(end - 1)"
                }
                func list(_ key: String) -> String {
                    (batch?[key]?.arrayValue ?? []).map { Format.exact($0) }.joined(separator: " ")
                }
                var fields = [String(e.int("iteration") ?? 0), String(e.int("epoch") ?? 0), String(e.int("step") ?? 0),
                              String(e.seq), String(e.int("batch.size") ?? 0), rows, list("x"), list("y"), list("pred")]
                fields += scalarColumns.map { Format.exact(e.value($0)) }
                fields += slotNames.map { Format.exact(e.value("slots.\($0.variable).\($0.name)")) }
                text += fields.map(csvField).joined(separator: ",") + "\n"
            }
            return text
        }
    }
}
