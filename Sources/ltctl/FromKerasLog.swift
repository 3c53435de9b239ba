import Foundation
import LTData
import LTEngine
import LTProtocol

/// `ltctl start … --from-keras-log "loss: 535.4800 - root_mean_squared_error: 23.1405" [--hand-loss 476.82]`:
/// finds the initial kernels whose run, with the rest of the job's settings, prints that line, reports every one,
/// and starts the job from the one the figures single out. The search runs the engine itself (InitialKernelSearch).
enum FromKerasLog {
    /// The figures of a progress-bar line: the last `loss: N` and `root_mean_squared_error: N` (or `rmse: N`) that
    /// are not validation figures.
    static func figures(in line: String) throws -> [InitialKernelSearch.Figure] {
        var found: [InitialKernelSearch.Figure] = []
        for (metric, names) in [(InitialKernelSearch.Figure.Metric.loss, ["loss"]), (.rmse, ["root_mean_squared_error", "rmse"])] {
            for name in names {
                let pattern = "(?<![A-Za-z_])" + name + #":\s*(-?[0-9]+(?:\.[0-9]+)?)"#
                guard let regex = try? NSRegularExpression(pattern: pattern) else { continue }
                let range = NSRange(line.startIndex..., in: line)
                guard let match = regex.matches(in: line, range: range).last,
                      let textRange = Range(match.range(at: 1), in: line),
                      let figure = InitialKernelSearch.Figure(metric, text: String(line[textRange])) else { continue }
                found.append(figure)
                break
            }
        }
        guard !found.isEmpty else {
            throw InputError("--from-keras-log: no `loss: N` or `root_mean_squared_error: N` in \"\(line)\"; "
                + "paste the last epoch's line as Keras printed it, e.g. \"loss: 535.4800 - root_mean_squared_error: 23.1405\"")
        }
        return found
    }

    static func handFigure(_ metric: InitialKernelSearch.Figure.Metric, _ text: String?, flag: String) throws -> InitialKernelSearch.Figure? {
        guard let text else { return nil }
        guard let figure = InitialKernelSearch.Figure(metric, text: text) else {
            throw InputError("\(flag) \(text): give the number as you computed it, e.g. 476.82")
        }
        return figure
    }

    static func describe(_ figures: [InitialKernelSearch.Figure]) -> String {
        figures.map { "\($0.metric.rawValue) \(Format.fixed($0.value, $0.decimals))" }.joined(separator: " and ")
    }

    /// The spec with `init` set to the kernel the figures single out; the report goes to `report`.
    static func resolve(_ spec: JSONValue, logLine: String, handLoss: String?, handRMSE: String?,
                        report: (String) -> Void) throws -> JSONValue {
        var printed = try figures(in: logLine)
        let hand = try [handFigure(.handLoss, handLoss, flag: "--hand-loss"), handFigure(.handRMSE, handRMSE, flag: "--hand-rmse")].compactMap { $0 }
        let jobSpec: JobSpec
        do { jobSpec = try JobSpec(json: spec) } catch { throw InputError("\(error)") }
        let limit = InitialKernelSearch.glorotLimit
        var found = InitialKernelSearch.candidates(jobSpec, printing: printed)
        var note = ""
        if found.isEmpty {
            // Figures retyped with padding ("535.4800" for 535.48) may print at fewer decimals than they show.
            let relaxed = printed.map { $0.withoutTrailingZeros ?? $0 }
            if relaxed != printed {
                let retry = InitialKernelSearch.candidates(jobSpec, printing: relaxed)
                if !retry.isEmpty {
                    note = "No kernel prints \(describe(printed)) to every decimal shown; reading trailing zeros as padding: \(describe(relaxed)).\n"
                    printed = relaxed
                    found = retry
                }
            }
        }
        let settings = "\(jobSpec.optimizer.name.rawValue), \(Format.count(jobSpec.epochs, "epoch")), batch size \(jobSpec.batchSize)"
        guard !found.isEmpty else {
            throw InputError("no initial kernel in ±\(Float(limit)) prints \(describe(printed)) with \(settings) on these \(jobSpec.data.x.count) rows; "
                + "check that epochs, batch size, optimizer and learning rate are the notebook's, and that the line is the last epoch's")
        }
        var text = note + "Initial kernels in ±\(Float(limit)) (GlorotUniform's range for Dense(1); the bias starts at 0) "
            + "whose run (\(settings)) prints \(describe(printed)):\n"
        for c in found {
            let o = c.outcome
            text += "  kernel \(Float(c.kernel)) (any float32 in \(Float(c.lowest))…\(Float(c.highest))): "
                + "loss \(Format.fixed(o.loss, 4)), rmse \(Format.fixed(o.rmse, 4)); "
                + "the final weights (w \(Float(o.finalW)), b \(Float(o.finalB))) score loss \(Format.fixed(o.handLoss, 4)), rmse \(Format.fixed(o.handRMSE, 4))\n"
        }
        let chosen = found.filter { c in hand.allSatisfy { $0.matches(c.outcome.value($0.metric)) } }
        guard !hand.isEmpty || found.count == 1 else {
            report(text)
            throw InputError("\(found.count) kernels print those figures; give the loss or RMSE you computed from the final weights "
                + "(--hand-loss or --hand-rmse) to choose between them")
        }
        guard chosen.count == 1, let pick = chosen.first else {
            report(text)
            throw InputError(chosen.isEmpty
                ? "none of them gives \(describe(hand)) from its final weights; check the hand-computed figure and the settings"
                : "\(chosen.count) kernels also give \(describe(hand)); give the other hand-computed figure too, or more decimals")
        }
        text += "Starting from kernel \(Float(pick.kernel)), bias 0" + (hand.isEmpty ? "" : " (the one whose final weights give \(describe(hand)))") + ".\n"
        report(text)
        return spec.setting("init", .object([("kernel", JSONValue(Double(Float(pick.kernel)))), ("bias", JSONValue(0))]))
    }
}
