import ArgumentParser
import Foundation
import LTClient
import LTProtocol

extension LTCtl {
    struct Explain: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show the arithmetic of one optimizer step with its real numbers, to redo it by hand.",
            discussion: """
            The rows used, the predictions with w_before and b_before, the errors and the loss, the gradient formulas \
            with their values, the optimizer's update with its state before and after, and the resulting w and b. \
            Intermediate values are recomputed here in the job's precision to show the working; the daemon's numbers \
            (marked "ltd") are the truth. --iteration 0 tells where the initial weights came from.
            """)

        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var job: JobArgument
        @Option(name: .shortAndLong, help: "The iteration (optimizer step, from 1; 0 for the initial weights).") var iteration: Int

        func validate() throws {
            if iteration < 0 { throw ValidationError("--iteration must be 0 or more") }
        }

        func run() throws {
            try runReportingErrors {
                let history = try JobHistory.read(job: job.name, connection: connection, types: [.start, .step])
                guard let start = history.start else { throw InputError("\(job.name) has no start event yet") }
                let palette = Palette(fd: STDOUT_FILENO)
                let text: String
                if iteration == 0 {
                    text = StepExplanation.initial(job: job.name, start: start, palette: palette)
                } else {
                    guard let index = history.steps.firstIndex(where: { $0.int("iteration") == iteration }) else {
                        let total = start.int("total_steps").map { " of \($0)" } ?? ""
                        throw InputError("\(job.name) has not reached iteration \(iteration): it has taken \(history.steps.last?.int("iteration") ?? 0)\(total) steps")
                    }
                    let previous = index > 0 ? history.steps[index - 1] : nil
                    text = StepExplanation(job: job.name, start: start, step: history.steps[index], previous: previous,
                                           isFloat32: history.isFloat32, palette: palette).text
                }
                let out = BufferedOutput(fd: STDOUT_FILENO)
                try out.write(text)
                try out.flush()
                return .success
            }
        }
    }
}

struct StepExplanation {
    let job: String
    let start: Event
    let step: Event
    /// The step before (its slots are this step's state before); nil for iteration 1 (the start event's slots).
    let previous: Event?
    let isFloat32: Bool
    let palette: Palette

    static let maxRowsShown = 24

    var text: String { isFloat32 ? render(Float.self) : render(Double.self) }

    private func exact(_ key: String) -> String { Format.exact(step.value(key)) }

    private func render<T: ExplainFloat>(_: T.Type) -> String {
        let iteration = step.int("iteration") ?? 0
        let n = step.int("batch.size") ?? 0
        let rows = Format.rowIndices(step.value("batch"))
        let optimizerName = start.string("optimizer.name") ?? "?"
        var t = palette.bold("\(job), iteration \(iteration): epoch \(step.int("epoch") ?? 0), step \(step.int("step") ?? 0)"
            + (start.int("steps_per_epoch").map { " of \($0)" } ?? "")) + " (\(optimizerName), \(isFloat32 ? "float32" : "float64"))\n\n"

        // 1. Rows
        let shownRows = rows.count <= 32 ? rows.map(String.init).joined(separator: ", ") : Format.rows(step.value("batch"), limit: 16)
        t += palette.bold("1. Rows used") + " (batch of \(n), in feed order): \(shownRows)\n\n"

        // 2. Predictions
        let wBefore = T(step.double("w_before") ?? .nan), bBefore = T(step.double("b_before") ?? .nan)
        let dataX = start.doubles("spec.data.x") ?? [], dataY = start.doubles("spec.data.y") ?? []
        let xs: [T] = (step.doubles("batch.x") ?? rows.map { $0 < dataX.count ? dataX[$0] : .nan }).map { T($0) }
        let ys: [T] = (step.doubles("batch.y") ?? rows.map { $0 < dataY.count ? dataY[$0] : .nan }).map { T($0) }
        let preds: [T] = zip(xs, xs.indices).map { x, i in
            if let p = step.value("batch.pred")?.arrayValue, i < p.count, let d = p[i].doubleValue { return T(d) }
            return x * wBefore + bBefore
        }
        let errors = zip(ys, preds).map { $0 - $1 }
        let squares = errors.map { $0 * $0 }
        t += palette.bold("2. Predictions") + " with the weights before this step (" + (previous == nil ? "the initial weights" : "after iteration \(iteration - 1)")
            + "): w_before = \(exact("w_before")), b_before = \(exact("b_before"))\n"
        let headers = ["row", "x", "y", "pred = w·x + b", "error = y − pred", "error²"]
        var table = [headers]
        for i in 0..<min(xs.count, Self.maxRowsShown) {
            table.append([i < rows.count ? String(rows[i]) : "?", xs[i].description, ys[i].description, preds[i].description,
                          errors[i].description, squares[i].description])
        }
        let widths = headers.indices.map { c in table.map { $0[c].count }.max() ?? 0 }
        for (r, line) in table.enumerated() {
            let cells = line.enumerated().map { Format.padLeft($0.element, widths[$0.offset]) }.joined(separator: "   ")
            t += "   " + (r == 0 ? palette.dim(cells) : cells) + "\n"
        }
        if xs.count > Self.maxRowsShown { t += "   … \(xs.count - Self.maxRowsShown) more rows\n" }
        t += "\n"

        // 3. Loss
        let sumSquares = squares.reduce(T(0), +)
        let loss = sumSquares / T(Double(max(n, 1)))
        t += palette.bold("3. Loss") + " (mean squared error of this batch, before the update):\n"
        t += "   loss = Σ error² / n = \(sumSquares) / \(n) = \(loss)" + palette.dim("      ltd: batch_loss \(exact("batch_loss"))") + "\n"
        t += "   this batch's RMSE = √loss = \(Format.fixed(loss.double.squareRoot(), 4)); Keras's running RMSE for epoch \(step.int("epoch") ?? 0) so far = \(Format.fixed(step.value("rmse"), 4, float32: isFloat32))"
            + " (loss \(Format.fixed(step.value("loss"), 4, float32: isFloat32)))\n\n"

        // 4. Gradients
        let sumXE = zip(xs, errors).reduce(T(0)) { $0 + $1.0 * $1.1 }
        let sumE = errors.reduce(T(0), +)
        let factor = T(-2.0 / Double(max(n, 1)))
        t += palette.bold("4. Gradients") + " of the loss at w_before, b_before:\n"
        t += "   grad_w = −(2/n)·Σ x·(y − pred) = −(2/\(n))×\(sumXE) = \(factor * sumXE)" + palette.dim("      ltd: \(exact("grad_w"))") + "\n"
        t += "   grad_b = −(2/n)·Σ (y − pred)   = −(2/\(n))×\(sumE) = \(factor * sumE)" + palette.dim("      ltd: \(exact("grad_b"))") + "\n\n"

        // 5. Optimizer
        var hyper: [String: Double] = [:]
        var flags: [String: Bool] = [:]
        for member in start.value("optimizer")?.objectMembers ?? [] {
            if let d = member.value.doubleValue { hyper[member.key] = d }
            if let b = member.value.boolValue { flags[member.key] = b }
        }
        let math = OptimizerMath<T>(optimizer: hyper, flags: flags, name: optimizerName)
        let before = previous ?? start
        t += palette.bold("5. Optimizer update") + ": " + EventPrinter.describeOptimizer(start.value("optimizer")) + "\n"
        t += "   state before = " + (previous == nil ? "the start event's (all slots start at their initial value)" : "after iteration \(iteration - 1)")
            + "; the gradients used are ltd's\n"
        var recomputed: [String: Double] = [:]
        for (variable, label, gradKey, valueKey, afterKey) in [("kernel", "w", "grad_w", "w_before", "w_after"), ("bias", "b", "grad_b", "b_before", "b_after")] {
            var slots: [String: Double] = [:]
            for member in before.value("slots.\(variable)")?.objectMembers ?? [] { slots[member.key] = member.value.doubleValue }
            let slotText = (before.value("slots.\(variable)")?.objectMembers ?? []).map { "\($0.key) \(Format.exact($0.value))" }.joined(separator: ", ")
            t += "   \(variable) (\(label)), g = \(gradKey) = \(exact(gradKey)); before: \(slotText.isEmpty ? "no slots" : slotText)\n"
            let working = math.update(label: label, value: step.double(valueKey) ?? .nan, grad: step.double(gradKey) ?? .nan,
                                      t: iteration - 1, slots: slots)
            for line in working.lines { t += "     " + line + "\n" }
            let after = (step.value("slots.\(variable)")?.objectMembers ?? []).map { "\($0.key) \(Format.exact($0.value))" }.joined(separator: ", ")
            t += palette.dim("     ltd: \(label) \(exact(afterKey))" + (after.isEmpty ? "" : "; after: \(after)")) + "\n"
            recomputed[label] = working.after
        }
        t += "\n"

        // 6. Result
        t += palette.bold("6. Result") + ": w = \(exact("w_after")), b = \(exact("b_after"))  (ltd)\n"
        let agrees = [("w", "w_after"), ("b", "b_after")].allSatisfy { label, key in
            recomputed[label].map { T($0) } == step.double(key).map { T($0) }
        }
        if !agrees {
            t += "   The working above differs from ltd in the last digits: ltd follows Keras's exact operation order (Eigen's "
                + "summation, fused multiply-adds, rsqrt); its figures are the truth.\n"
        }
        t += "   With these weights the validation set scores val_loss \(Format.fixed(step.value("val_loss"), 4, float32: isFloat32)), val_rmse \(Format.fixed(step.value("val_rmse"), 4, float32: isFloat32))"
            + " (model.evaluate after the update).\n"
        return t
    }

    /// Iteration 0: where the initial weights came from (the start event's `init` object).
    static func initial(job: String, start: Event, palette: Palette) -> String {
        let w = Format.exact(start.value("w")), b = Format.exact(start.value("b"))
        var t = palette.bold("\(job), iteration 0: the initial weights") + "\n"
        t += "   w = \(w), b = \(b)\n"
        let seed = start.value("init.seed").map(Format.exact)
        switch start.string("init.initializer") ?? "constant" {
        case "constant":
            t += "   Given in the spec (init.kernel \(Format.exact(start.value("spec.init.kernel") ?? start.value("w"))), "
                + "init.bias \(Format.exact(start.value("spec.init.bias") ?? start.value("b")))), as with "
                + "Dense(1, kernel_initializer=Constant(\(w)), bias_initializer=Constant(\(b))).\n"
        case "glorot_uniform", "keras", "keras_default":
            let isKeras = start.string("init.initializer") != "glorot_uniform"
            if isKeras {
                t += "   A fresh Dense(1) after keras.utils.set_random_seed(\(seed ?? "?")): its default kernel initializer is GlorotUniform, "
                    + "whose seed Keras draws from Python's random module"
                    + (start.value("init.initializer_seed").map { " (here \(Format.exact($0)))" } ?? "") + "; the bias initializer is zeros.\n"
            } else {
                t += "   keras.initializers.GlorotUniform(seed=\(seed ?? "?")) for the (1, 1) kernel; the bias is zeros.\n"
            }
            let limit = start.value("init.limit").map(Format.exact) ?? "1.7320508"
            t += "   limit = √(6 / (fan_in + fan_out)) = √(6 / 2) = √3 = \(limit)\n"
            if let u = start.value("init.unit_uniform") {
                t += "   TF's stateless Philox generator turns the seed into a unit uniform u = \(Format.exact(u)) in [0, 1)\n"
                t += "   w = −limit + 2·limit·u = −\(limit) + 2×\(limit)×\(Format.exact(u)) = \(w)\n"
            } else {
                t += "   w is drawn uniformly from [−limit, limit) by TF's stateless Philox generator: \(w)\n"
            }
        case let other:
            t += "   Initializer: \(other)\n"
        }
        let slots = ["kernel", "bias"].map { v in
            "\(v): " + ((start.value("slots.\(v)")?.objectMembers ?? []).map { "\($0.key) \(Format.exact($0.value))" }.joined(separator: ", "))
        }.joined(separator: "; ")
        t += "   The optimizer's slots start at: \(slots)\n"
        if let optimum = start.value("optimum"), !optimum.isNull {
            t += "   For reference, the least-squares optimum of the training data is w \(Format.fixed(optimum["w"], 4, float32: false)), b \(Format.fixed(optimum["b"], 4, float32: false)) "
                + "(mse \(Format.fixed(optimum["mse"], 4, float32: false))).\n"
        }
        return t
    }
}
