import ArgumentParser
import Foundation
import LTClient
import LTProtocol

extension LTCtl {
    struct Explain: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show the arithmetic of one optimizer step with its real numbers, to redo it by hand.",
            discussion: """
            The rows used, the predictions with the weights before the step, the errors and the loss, the gradients, \
            the optimizer's update line by line with its state before and after, and the resulting w and b. Every \
            number is computed by the daemon's engine, by the code that trains, in the job's precision and in Keras's \
            order of operations: redone by hand in that precision, each line gives the value shown, and the result is \
            ltd's w and b exactly. --iteration 0 tells where the initial weights came from. --json prints the \
            daemon's reply (docs/PROTOCOL.md, "explain").
            """)

        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var job: JobArgument
        @Option(name: .shortAndLong, help: "The iteration (optimizer step, from 1; 0 for the initial weights).") var iteration: Int
        @Flag(help: "Print the daemon's explanation object as one JSON line.") var json = false

        func validate() throws {
            if iteration < 0 { throw ValidationError("--iteration must be 0 or more") }
        }

        func run() throws {
            try runReportingErrors {
                let daemon = try connection.connect()
                // A daemon older than explain would only say "unknown op"; say which side to upgrade instead.
                try daemon.require(.explain, for: "explain a step")
                let reply = try daemon.request("explain", [("job", .string(job.name)), ("iteration", JSONValue(iteration))])
                let out = BufferedOutput(fd: STDOUT_FILENO)
                if json {
                    try out.write(reply.serialized + "\n")
                } else {
                    try out.write(ExplanationText(reply: reply, palette: Palette(fd: STDOUT_FILENO)).text)
                }
                try out.flush()
                return .success
            }
        }
    }
}

/// The daemon's `explanation` reply in words. Only rendering happens here: every number is the daemon's text.
struct ExplanationText {
    let reply: JSONValue
    let palette: Palette

    static let maxRowsShown = 24

    private func exact(_ v: JSONValue?) -> String { Format.exact(v) }

    var text: String { reply["initial"] != nil ? initial : step }

    private var job: String { reply["job"]?.stringValue ?? "?" }
    private var precision: String { reply["precision"]?.stringValue ?? "float32" }

    private var step: String {
        let r = reply
        let n = r["batch_size"]?.intValue ?? 0
        let rows = r["rows"]?.arrayValue ?? []
        var t = palette.bold("\(job), iteration \(r["iteration"]?.intValue ?? 0): epoch \(r["epoch"]?.intValue ?? 0), "
            + "step \(r["step"]?.intValue ?? 0) of \(r["steps_per_epoch"]?.intValue ?? 0)")
            + " (\(r["optimizer"]?.stringValue ?? "?"), \(precision))\n"
        t += palette.dim("Every number is ltd's own \(precision) value, unrounded; every operation below rounds to \(precision). "
            + "Formulas read left to right, × and / before + and −.") + "\n\n"

        // 1. Rows
        let rowList = rows.compactMap { $0["row"]?.intValue }
        let shownRows = rowList.count <= 32 ? rowList.map(String.init).joined(separator: ", ")
            : rowList.prefix(16).map(String.init).joined(separator: ", ") + ", …"
        t += palette.bold("1. Rows used") + " (batch of \(n), in feed order): \(shownRows)\n\n"

        // 2. Forward pass
        t += palette.bold("2. Predictions and errors") + " with the weights before this step: w = \(exact(r["w_before"])), "
            + "b = \(exact(r["b_before"])); scale = 1/n = 1/\(n) = \(exact(r["scale"]))\n"
        let headers = ["row", "x", "y", "prediction = x×w + b", "error = y − prediction", "error×error",
                       "gradient_part = −(scale×(error+error))", "grad_w so far"]
        var table = [headers]
        for row in rows.prefix(Self.maxRowsShown) {
            table.append(["row", "x", "y", "prediction", "error", "squared_error", "gradient_part", "grad_w_so_far"].map {
                $0 == "row" ? String(row["row"]?.intValue ?? 0) : exact(row[$0])
            })
        }
        let widths = headers.indices.map { c in table.map { $0[c].count }.max() ?? 0 }
        for (i, line) in table.enumerated() {
            let cells = line.enumerated().map { Format.padLeft($0.element, widths[$0.offset]) }.joined(separator: "  ")
            t += "   " + (i == 0 ? palette.dim(cells) : cells) + "\n"
        }
        if n > min(rows.count, Self.maxRowsShown) {
            t += "   … \(n - min(rows.count, Self.maxRowsShown)) more rows" + (rows.count < n ? " (--json lists the first \(rows.count))" : " (see --json)") + "\n"
        }
        t += "\n"

        // 3. Loss and 4. gradients
        t += palette.bold("3. Loss") + " of this batch, before the update:\n"
        t += "   squared_error_sum = Σ error×error, added in Eigen's order (8 lanes, then halved) = \(exact(r["squared_error_sum"]))\n"
        t += "   batch_loss = squared_error_sum / n = \(exact(r["squared_error_sum"])) / \(n) = \(exact(r["batch_loss"]))\n\n"
        t += palette.bold("4. Gradients") + " at the weights before the step:\n"
        t += "   grad_w = Σ x×gradient_part, one fused multiply-add per row in feed order (the last \"grad_w so far\") = \(exact(r["grad_w"]))\n"
        t += "   grad_b = Σ gradient_part, added in Eigen's order = \(exact(r["grad_b"]))\n\n"

        // 5. Optimizer
        let hyper = r["hyper_parameters"]?.objectMembers ?? []
        t += palette.bold("5. Optimizer update") + " (\(r["optimizer"]?.stringValue ?? "?")): "
            + hyper.map { "\($0.key) \(exact($0.value))" }.joined(separator: ", ") + "\n"
        var shared: [String: String] = [:]
        for (key, value) in hyper { shared[key] = exact(value) }
        if let lines = r["shared"]?.arrayValue, !lines.isEmpty {
            t += "   once for both variables:\n"
            t += render(lines, &shared)
        }
        for variable in ["kernel", "bias"] {
            guard let v = r[variable] else { continue }
            let symbol = v["symbol"]?.stringValue ?? "?", gradient = v["gradient"]?.stringValue ?? "?"
            var env = shared
            env[symbol] = exact(v["before"])
            env[gradient] = exact(v["grad"])
            let slots = v["slots_before"]?.objectMembers ?? []
            for (name, value) in slots { env["\(variable).\(name)"] = exact(value) }
            let before = ["\(symbol) \(exact(v["before"]))", "\(gradient) \(exact(v["grad"]))"]
                + slots.map { "\(variable).\($0.key) \(exact($0.value))" }
            t += "   \(variable) (\(symbol)), before: " + before.joined(separator: ", ") + "\n"
            t += render(v["lines"]?.arrayValue ?? [], &env)
            let after = (v["slots_after"]?.objectMembers ?? []).map { "\(variable).\($0.key) \(exact($0.value))" }
            if !after.isEmpty { t += "     after: " + after.joined(separator: ", ") + "\n" }
        }
        t += "\n"

        // 6. Result
        t += palette.bold("6. Result") + ": w = \(exact(r["w_after"])), b = \(exact(r["b_after"]))"
            + " — ltd's weights after iteration \(r["iteration"]?.intValue ?? 0), bit for bit.\n"
        return t
    }

    /// `name = formula`, then the formula with the values it reads, then the value; binds `name` for what follows.
    private func render(_ lines: [JSONValue], _ env: inout [String: String]) -> String {
        var t = ""
        for line in lines {
            let name = line["name"]?.stringValue ?? "?", formula = line["formula"]?.stringValue ?? ""
            let value = exact(line["value"])
            let indent = String(repeating: " ", count: 5 + name.count)
            t += "     \(name) = \(Self.pretty(formula))\n"
            t += "\(indent) = \(Self.pretty(Self.substitute(formula, env)))\n"
            let operations = line["operations"]?.arrayValue ?? []
            if operations.count > 1 {
                for operation in operations { t += palette.dim("\(indent)     \(Self.operation(operation))") + "\n" }
            }
            t += "\(indent) = " + palette.bold(value) + "\n"
            env[name] = value
        }
        return t
    }

    /// The formula with each bound name replaced by its value (negative values in parentheses).
    static func substitute(_ formula: String, _ env: [String: String]) -> String {
        var out = "", token = ""
        func flush() {
            if let value = env[token] { out += value.hasPrefix("-") ? "(\(value))" : value } else { out += token }
            token = ""
        }
        for c in formula {
            if c.isLetter || c.isNumber || c == "_" || c == "." { token.append(c) } else { flush(); out.append(c) }
        }
        flush()
        return out
    }

    /// One operation with its operands' values: "(-79.64865) × 0.020200986 = -1.608976".
    static func operation(_ o: JSONValue) -> String {
        let operands = (o["operands"]?.arrayValue ?? []).map { v -> String in
            let text = Format.exact(v)
            return text.hasPrefix("-") ? "(\(text))" : text
        }
        let op = o["operator"]?.stringValue ?? "?"
        let result = Format.exact(o["value"])
        if operands.count == 2, ["+", "-", "*", "/"].contains(op) {
            return "\(operands[0]) \(op == "*" ? "×" : op == "-" ? "−" : op) \(operands[1]) = \(result)"
        }
        return "\(op)(\(operands.joined(separator: ", "))) = \(result)"
    }

    /// × and − for reading; the engine's formulas use * and -.
    static func pretty(_ formula: String) -> String {
        formula.replacingOccurrences(of: " * ", with: " × ").replacingOccurrences(of: " - ", with: " − ")
    }

    private var initial: String {
        let i = reply["initial"] ?? .null
        let w = exact(i["w"]), b = exact(i["b"])
        var t = palette.bold("\(job), iteration 0: the initial weights") + " (\(precision))\n"
        t += "   w = \(w), b = \(b)\n"
        let seed = i["seed"].map(Format.exact)
        switch i["initializer"]?.stringValue ?? "constant" {
        case "constant":
            t += "   Given in the spec, as with Dense(1, kernel_initializer=Constant(\(w)), bias_initializer=Constant(\(b))).\n"
        case "glorot_uniform":
            t += "   keras.initializers.GlorotUniform(seed=\(seed ?? "?")) for the (1, 1) kernel; the bias is zeros.\n"
        case "keras_default":
            t += "   A fresh Dense(1) after keras.utils.set_random_seed(\(seed ?? "?")): its default kernel initializer is "
                + "GlorotUniform, whose seed Keras draws from Python's random module"
                + (i["initializer_seed"].map { " (here \(Format.exact($0)))" } ?? "") + "; the bias initializer is zeros.\n"
        case let other:
            t += "   Initializer: \(other)\n"
        }
        if let limit = i["limit"], let u = i["unit_uniform"] {
            t += "   limit = √(6 / (fan_in + fan_out)) = √(6 / 2) = √3, as float32: \(exact(limit))\n"
            t += "   TF's stateless Philox generator turns the seed into a unit uniform \(exact(u)) in [0, 1);\n"
            t += "   TF scales it to [minval, maxval) = [−limit, limit) in float32:\n"
            var env: [String: String] = [:]
            for (name, value) in i["given"]?.objectMembers ?? [] { env[name] = exact(value) }
            t += render(i["lines"]?.arrayValue ?? [], &env)
        }
        let slots = ["kernel", "bias"].map { v in
            "\(v): " + ((i["slots"]?[v]?.objectMembers ?? []).map { "\($0.key) \(exact($0.value))" }.joined(separator: ", "))
        }.joined(separator: "; ")
        t += "   The optimizer's slots start at: \(slots)\n"
        if let optimum = i["optimum"], !optimum.isNull {
            t += "   For reference, the least-squares optimum of the training data is w \(Format.fixed(optimum["w"], 4, float32: false)), "
                + "b \(Format.fixed(optimum["b"], 4, float32: false)) (mse \(Format.fixed(optimum["mse"], 4, float32: false)); "
                + "rounded to 4 decimals).\n"
        }
        return t
    }
}
