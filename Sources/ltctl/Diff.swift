import ArgumentParser
import Foundation
import LTClient
import LTProtocol

extension LTCtl {
    struct Diff: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Compare two jobs step by step, bit for bit: is ltd's replica exactly the real Keras run?",
            discussion: """
            Sets the two jobs' initial weights and then every optimizer step side by side, field by field (rows, \
            weights before and after, gradients, batch loss, the running loss and RMSE Keras prints, validation, the \
            optimizer's slots), as float32 bit patterns (float64 when both jobs are float64). Fields only one job \
            carries (a job fed by the Keras bridge has no gradients) are listed, not compared.

            Prints `12/12 steps bit-identical`, or the first divergence: iteration, field, both values, their \
            distance in ULPs (units in the last place) and what it likely means.

            Typical use, after a notebook's fit was watched through the Keras bridge: \
            `ltctl replicate nb1 && ltctl diff nb1 nb1-replica`.

            Exit status: 0 when the jobs are identical in every step, 1 when they differ (or either cannot be read).
            """)

        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "The first job (e.g. the real run).") var a: String
        @Argument(help: "The second job (e.g. its replica).") var b: String
        @Flag(help: "Print JSON: {identical, steps_a, steps_b, identical_steps, fields_compared, first_divergence: {iteration, field, a, b, ulps, meaning}|null, ...}.")
        var json = false

        func run() throws {
            try runReportingErrors {
                let conn = try connection.connect()
                let historyA = try JobHistory.read(job: a, from: conn)
                let historyB = try JobHistory.read(job: b, from: conn)
                let diff = JobDiff(startA: historyA.start, stepsA: historyA.steps, startB: historyB.start, stepsB: historyB.steps)
                let out = BufferedOutput(fd: STDOUT_FILENO)
                if json {
                    try out.write(diff.json(a: a, b: b).serialized + "\n")
                } else {
                    try out.write(Self.text(diff, a: a, b: b))
                }
                try out.flush()
                return diff.identical ? .success : .refused
            }
        }

        static func text(_ diff: JobDiff, a: String, b: String) -> String {
            var text = ""
            let total = max(diff.stepsA, diff.stepsB)
            text += "\(diff.identicalSteps)/\(total) steps bit-identical (\(diff.precision.rawValue)"
            text += diff.firstDivergence?.iteration == 0 ? "; the initial weights differ)\n" : ", initial weights included)\n"
            if diff.stepsA != diff.stepsB {
                text += "\(a) has \(Format.count(diff.stepsA, "step")), \(b) has \(diff.stepsB).\n"
            }
            if let d = diff.firstDivergence {
                let place = d.iteration == 0 ? "the initial weights" : "iteration \(d.iteration) (epoch \(d.epoch), step \(d.step))"
                text += "First divergence at \(place), field \(d.field):\n"
                let width = max(a.count, b.count)
                text += "  \(Format.padRight(a, width))  \(d.a.serialized)\n"
                text += "  \(Format.padRight(b, width))  \(d.b.serialized)\n"
                if let ulps = d.ulps { text += "  distance: \(Format.count(Int(clamping: ulps), "ULP")) (\(diff.precision.rawValue))\n" }
                if diff.divergentFields.count > 1 {
                    text += "  also different in that step: \(diff.divergentFields.dropFirst().joined(separator: ", "))\n"
                }
                text += Format.wrapWords(d.meaning, width: 100, first: "Likely: ", rest: "  ") + "\n"
            } else if let note = diff.platformNote {
                text += Format.wrapWords(note, width: 100, first: "Note: ", rest: "  ") + "\n"
            }
            if !diff.fieldsNotCompared.isEmpty {
                text += "Not compared (only one job records them): \(diff.fieldsNotCompared.joined(separator: ", "))\n"
            }
            return text
        }
    }
}
