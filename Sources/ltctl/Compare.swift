import ArgumentParser
import Foundation
import LTClient
import LTProtocol

extension LTCtl {
    struct Compare: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Why Keras's RMSE differs from yours: the running RMSE vs. the validation RMSE after each update.",
            discussion: """
            Per iteration: the RMSE Keras prints (running over the epoch's batches so far, each measured before its \
            own update), this batch's own RMSE (sqrt of its loss, before the update), the validation RMSE after the \
            update (what a spreadsheet computes for that model), and the difference; then a few sentences with this \
            job's own figures. The table shows 4 decimals; --json and --csv carry the daemon's exact numbers.
            """)

        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var job: JobArgument
        @Flag(help: "Print JSON: {job, rows: [...], explanation: [...]}.") var json = false
        @Flag(help: "Print CSV: iteration,epoch,step,rows,keras_rmse,batch_rmse,val_rmse,difference.") var csv = false
        @Flag(help: "Also draw the Keras RMSE and the validation RMSE as a chart, within the terminal's width, and say in words what it shows.") var chart = false
        @Flag(help: "Draw the chart with ASCII marks (* and o) instead of braille dots.") var ascii = false

        func validate() throws {
            if json && csv { throw ValidationError("--json and --csv exclude each other") }
            if chart && (json || csv) { throw ValidationError("--chart draws for a terminal; it does not go with --json or --csv") }
            if ascii && !chart { throw ValidationError("--ascii is a form of --chart; give --chart --ascii") }
        }

        func run() throws {
            try runReportingErrors {
                let history = try JobHistory.read(job: job.name, connection: connection, types: [.start, .step, .epoch])
                let comparison = Comparison(job: job.name, history: history)
                let out = BufferedOutput(fd: STDOUT_FILENO)
                if json {
                    try out.write(comparison.json.serialized + "\n")
                } else if csv {
                    try out.write(comparison.csv)
                } else {
                    try out.write(comparison.text(palette: Palette(fd: STDOUT_FILENO)))
                    if chart { try out.write("\n" + RMSEChart.text(history: history, fd: STDOUT_FILENO, color: Palette(fd: STDOUT_FILENO).enabled, ascii: ascii)) }
                }
                try out.flush()
                return .success
            }
        }
    }
}

/// The figures of `compare`, one row per step, and the explanation built from them.
struct Comparison {
    struct Row {
        var iteration: Int
        var epoch: Int
        var step: Int
        var rows: String
        var batchSize: Int
        var kerasRMSE: JSONValue
        var batchRMSE: JSONValue
        var valRMSE: JSONValue
        var difference: JSONValue
        var batchLoss: Double
        var wBefore: JSONValue
        var wAfter: JSONValue
        var bAfter: JSONValue
    }

    let job: String
    let history: JobHistory
    let rows: [Row]

    init(job: String, history: JobHistory) {
        self.job = job
        self.history = history
        rows = history.steps.map { e in
            // The job's own values: for float32, the exact float32 numbers (and float32 arithmetic for the difference).
            let keras = history.exact(e.double("rmse") ?? .nan)
            let val = history.exact(e.double("val_rmse") ?? .nan)
            let batchLoss = history.exact(e.double("batch_loss") ?? .nan)
            return Row(iteration: e.int("iteration") ?? 0, epoch: e.int("epoch") ?? 0, step: e.int("step") ?? 0,
                       rows: Format.rows(e.value("batch")), batchSize: e.int("batch.size") ?? 0,
                       kerasRMSE: e.value("rmse") ?? .null,
                       batchRMSE: e.value("batch_rmse") ?? .null,
                       valRMSE: e.value("val_rmse") ?? .null,
                       // A figure the job did not record (an external job without validation) has no difference.
                       difference: e.value("rmse") == nil || e.value("val_rmse") == nil ? .null : history.number(history.rounded(keras - val)),
                       batchLoss: batchLoss,
                       wBefore: e.value("w_before") ?? .null, wAfter: e.value("w_after") ?? .null, bAfter: e.value("b_after") ?? .null)
        }
    }

    var json: JSONValue {
        .object([
            ("job", .string(job)),
            ("state", .string(history.end?.string("state") ?? history.state)),
            ("rows", .array(rows.map { r in
                .object([("iteration", JSONValue(r.iteration)), ("epoch", JSONValue(r.epoch)), ("step", JSONValue(r.step)),
                         ("rows", .string(r.rows)), ("keras_rmse", r.kerasRMSE), ("batch_rmse", r.batchRMSE),
                         ("val_rmse", r.valRMSE), ("difference", r.difference)])
            })),
            ("explanation", .array(explanation.map { .string($0) })),
        ])
    }

    var csv: String {
        var text = "iteration,epoch,step,rows,keras_rmse,batch_rmse,val_rmse,difference\n"
        for r in rows {
            text += [String(r.iteration), String(r.epoch), String(r.step), csvField(r.rows), Format.exact(r.kerasRMSE),
                     Format.exact(r.batchRMSE), Format.exact(r.valRMSE), Format.exact(r.difference)].joined(separator: ",") + "\n"
        }
        return text
    }

    func text(palette: Palette) -> String {
        let nVal = history.start?.int("n_val")
        var text = palette.bold("\(job): the RMSE Keras prints vs. the RMSE of the model after each update") + "\n"
        if let start = history.start {
            text += "  " + EventPrinter.describeOptimizer(start.value("optimizer")) + "; \(start.int("n_train") ?? 0) training rows, "
                + "\(nVal ?? 0) validation rows, batch \(start.int("batch_size") ?? 0), \(Format.count(start.int("epochs") ?? 0, "epoch"))\n"
        }
        text += "\n"
        let iterWidth = max(4, String(rows.last?.iteration ?? 0).count)
        let rowsWidth = max(6, rows.map(\.rows.count).max() ?? 0)
        text += palette.dim(Format.padLeft("iter", iterWidth) + "  " + Format.padLeft("epoch", 5) + "  " + Format.padLeft("step", 4) + "  "
            + Format.padRight("rows", rowsWidth) + Format.padLeft("keras rmse", 12) + Format.padLeft("batch rmse", 12)
            + Format.padLeft("val rmse after", 16) + Format.padLeft("keras - val", 13)) + "\n"
        for r in rows {
            text += Format.padLeft(String(r.iteration), iterWidth) + "  " + Format.padLeft(String(r.epoch), 5) + "  "
                + Format.padLeft(String(r.step), 4) + "  " + Format.padRight(r.rows, rowsWidth)
                + palette.bold(Format.padLeft(Format.fixed(r.kerasRMSE, 4, float32: history.isFloat32), 12)) + Format.padLeft(Format.fixed(r.batchRMSE, 4, float32: history.isFloat32), 12)
                + palette.cyan(Format.padLeft(Format.fixed(r.valRMSE, 4, float32: history.isFloat32), 16)) + Format.padLeft(signed(r.difference.doubleValue.map(history.exact)), 13) + "\n"
        }
        if rows.isEmpty { text += "(no steps yet)\n" }
        text += "\n"
        text += palette.dim("keras rmse:     what fit prints: sqrt(sum of squared errors of this epoch's batches so far / their rows), each batch scored before its own update") + "\n"
        text += palette.dim("batch rmse:     sqrt(batch loss): this batch alone, before the update") + "\n"
        text += palette.dim("val rmse after: model.evaluate on the \(nVal.map(String.init) ?? "") validation rows with the weights after this update") + "\n\n"
        text += palette.bold("Why they differ") + "\n"
        for sentence in explanation { text += wrap(sentence, width: 100) }
        return text
    }

    private func signed(_ v: Double?) -> String {
        guard let v else { return "-" }
        return (v >= 0 ? "+" : "") + Format.fixed(v, 4)
    }

    private func wrap(_ paragraph: String, width: Int) -> String {
        Format.wrapWords(paragraph, width: width + 2, first: "- ", rest: "  ")
    }

    /// Plain sentences about this job's own figures.
    var explanation: [String] {
        guard let last = rows.last else { return ["The job has taken no steps yet, so there is nothing to compare."] }
        let f = { (v: JSONValue) in Format.fixed(v, 4, float32: history.isFloat32) }
        let epochRows = rows.filter { $0.epoch == last.epoch && $0.iteration <= last.iteration }
        let rowsSeen = epochRows.reduce(0) { $0 + $1.batchSize }
        let stepsPerEpoch = history.start?.int("steps_per_epoch")
        let nVal = history.start?.int("n_val") ?? 0
        let nTrain = history.start?.int("n_train") ?? 0
        var out: [String] = []

        var first = "At iteration \(last.iteration) (epoch \(last.epoch), step \(last.step)\(stepsPerEpoch.map { " of \($0)" } ?? "")) "
            + "Keras prints rmse \(f(last.kerasRMSE)). "
        if epochRows.count == 1 {
            first += "It is the first batch of the epoch, so this running figure has seen only that batch and equals the batch's own RMSE "
                + "(\(f(last.batchRMSE))), measured with the weights before the update (w \(Format.exact(last.wBefore)))."
        } else {
            let firstW = epochRows.first.map { Format.exact($0.wBefore) } ?? "?"
            first += "That is not the error of one model: it is the square root of the mean squared error over the \(rowsSeen) rows "
                + "seen so far in epoch \(last.epoch), and each of the \(epochRows.count) batches was scored with the weights in force "
                + "before its own update: \(epochRows.count) different models, w going from \(firstW) to \(Format.exact(last.wBefore))."
        }
        out.append(first)

        let sameData = history.start.map { $0.value("spec.validation") == nil || $0.value("spec.validation")?.isNull == true } ?? true
        out.append("The validation RMSE after iteration \(last.iteration) is \(f(last.valRMSE)): one model, the weights after the update "
            + "(w \(Format.exact(last.wAfter)), b \(Format.exact(last.bAfter))), scored on all \(nVal) validation rows"
            + (sameData ? " (the \(nTrain) training rows themselves, as no separate validation set was given)." : ".")
            + " That is what you get when you compute the RMSE of the final weights yourself, in a spreadsheet for example.")

        if let k = last.kerasRMSE.doubleValue, let v = last.valRMSE.doubleValue, k.isFinite, v.isFinite {
            let keras = history.exact(k), val = history.exact(v)
            let diff = Format.fixed(history.rounded(keras - val), 4)
            if keras > val {
                out.append("So Keras's figure is higher by \(diff): it is made of older models, each measured before it learned from its "
                    + "batch, while the validation figure already has the benefit of every update up to iteration \(last.iteration).")
            } else if keras < val {
                out.append("Here Keras's figure is lower, by \(Format.fixed(history.rounded(val - keras), 4)): the rows of this epoch's batches fitted their "
                    + "pre-update models better than the whole validation set fits the model after iteration \(last.iteration).")
            } else {
                out.append("Here the two figures happen to agree to 4 decimals.")
            }
        }

        if epochRows.count > 1 {
            let batchRMSEs = epochRows.map { Format.fixed($0.batchRMSE, 4, float32: history.isFloat32) }.joined(separator: ", ")
            let mean = epochRows.compactMap { $0.batchRMSE.doubleValue }.reduce(0, +) / Double(epochRows.count)
            let weighted = (epochRows.reduce(0.0) { $0 + $1.batchLoss * Double($1.batchSize) } / Double(max(rowsSeen, 1))).squareRoot()
            out.append("Nor is it the mean of the batch RMSEs (\(batchRMSEs); mean \(Format.fixed(mean, 4))): Keras adds up squared errors, "
                + "weighted by rows, and takes the root at the end: sqrt((" + epochRows.map { "\($0.batchSize)×\(Format.fixed($0.batchLoss, 4))" }.joined(separator: " + ")
                + ") / \(rowsSeen)) = \(Format.fixed(weighted, 4)).")
        }

        if let epochEvent = history.epochs.last(where: { $0.int("epoch") == last.epoch }), let valRMSE = epochEvent.value("val_rmse") {
            out.append("fit's epoch \(last.epoch) line reports val_root_mean_squared_error \(f(valRMSE)): exactly the validation RMSE after "
                + "the epoch's last step, because Keras validates once per epoch, after its last update.")
        }
        return out
    }
}
