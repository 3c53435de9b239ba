import ArgumentParser
import Foundation
import LTClient
import LTProtocol

extension LTCtl {
    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List your jobs (--all: everyone's): state, owner, progress and latest metrics.",
            discussion: """
            --json prints the daemon's array of status objects (a damaged job's progress as null: ltd could not read \
            its steps). Another user's job is named OWNER/NAME, as --all shows it.
            --sort val_rmse (or rmse) ranks the jobs as the class board does (`ltctl board`): finished runs by their \
            final RMSE, lowest first, then those still going with their progress, then cancelled ones, then those \
            that diverged or failed with the reason. --sort iteration, name, owner or state only sorts. \
            Without --sort, jobs are listed in the order they were started.
            """)

        @OptionGroup var connection: ConnectionOptions
        @Flag(help: "List every user's jobs, not just yours.") var all = false
        @Option(help: "Rank by val_rmse or rmse, or sort by iteration, name, owner or state.") var sort: ClassBoard.Order?
        @Flag(help: "Print the jobs as a JSON array of status objects.") var json = false

        func run() throws {
            try runReportingErrors {
                let daemon = try connection.connect()
                if all { try daemon.require(.ownerNames, for: "list every user's jobs") }
                let reply = try daemon.request("list", all ? [("all", .bool(true))] : [])
                let listed = reply["jobs"]?.arrayValue ?? []
                let ranked = sort.map { ClassBoard.rank(listed.compactMap { try? JobStatus(json: $0) }, by: $0) }
                let jobs = ranked.map { $0.map(\.status.json) } ?? listed
                let out = BufferedOutput(fd: STDOUT_FILENO)
                if json {
                    try out.write(JSONValue.array(jobs.map(Format.statusJSON)).serialized + "\n")
                } else if jobs.isEmpty {
                    try out.write(all ? "No jobs. Start one with: ltctl start job1 --example colab\n"
                                      : "You have no jobs (ltctl list --all shows everyone's). Start one with: ltctl start job1 --example colab\n")
                } else if let ranked, let sort {
                    let table = BoardText.table(ranked, by: sort, palette: Palette(fd: STDOUT_FILENO), width: Terminal.width(fd: STDOUT_FILENO))
                    try out.write(table.joined(separator: "\n") + "\n")
                } else {
                    try out.write(Self.table(jobs, all: all, palette: Palette(fd: STDOUT_FILENO)))
                }
                try out.flush()
                return .success
            }
        }

        /// With `all`, jobs are shown by their full names (OWNER/NAME), as others address them.
        static func table(_ jobs: [JSONValue], all: Bool = false, palette: Palette) -> String {
            let header = ["JOB", "STATE", "OWNER", "ITERATION", "EPOCH", "PROGRESS", "KERAS RMSE", "VAL RMSE"]
            var rows: [[String]] = [header]
            for s in jobs {
                rows.append([
                    (all ? s["full_name"]?.stringValue : nil) ?? s["job"]?.stringValue ?? "?",
                    s["state"]?.stringValue ?? "?",
                    Format.owner(s["owner"]?.intValue),
                    "\(s["iteration"]?.intValue ?? 0)/\(s["total_steps"]?.intValue ?? 0)",
                    "\(s["epoch"]?.intValue ?? 0)/\(s["epochs"]?.intValue ?? 0)",
                    Format.progress(s["progress"]?.doubleValue, state: s["state"]?.stringValue),
                    s["rmse"] != nil ? Format.fixed(s["rmse"], 4, float32: s["precision"]?.stringValue != "float64") : "-",
                    s["val_rmse"] != nil ? Format.fixed(s["val_rmse"], 4, float32: s["precision"]?.stringValue != "float64") : "-",
                ])
            }
            let widths = header.indices.map { c in rows.map { $0[c].count }.max() ?? 0 }
            var text = ""
            for (r, row) in rows.enumerated() {
                var line = ""
                for (c, cell) in row.enumerated() {
                    // Numbers right-aligned, words left-aligned; the state coloured (padding measured before colouring).
                    let padded = c >= 3 ? Format.padLeft(cell, widths[c]) : Format.padRight(cell, widths[c])
                    line += (c == 1 && r > 0 ? palette.state(cell) + String(padded.dropFirst(cell.count)) : padded)
                    if c < row.count - 1 { line += "  " }
                }
                text += (r == 0 ? palette.dim(line) : line) + "\n"
            }
            // A damaged job has no numbers: say why below the table, and what to do.
            let damaged = jobs.compactMap { s in s["reason"]?.stringValue.map { (s["job"]?.stringValue ?? "?", $0) } }
            if !damaged.isEmpty {
                text += "\nDamaged (ltd could not read them; their files are left as they are; remove with ltctl delete NAME):\n"
                for (job, reason) in damaged { text += "  \(job): \(reason)\n" }
            }
            return text
        }
    }

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show one job's state, owner, iteration, epoch, progress and latest metrics.",
            discussion: "--json prints the daemon's status object (at least job, state, iteration, epoch, owner, seq).")

        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var job: JobArgument
        @Flag(help: "Print the daemon's status object as JSON.") var json = false

        func run() throws {
            try runReportingErrors {
                let reply = try connection.connect().request("status", [("job", .string(job.name))])
                let status = reply["status"] ?? .object([])
                let out = BufferedOutput(fd: STDOUT_FILENO)
                try out.write(json ? Format.statusJSON(status).serialized + "\n" : StatusText.summary(status, palette: Palette(fd: STDOUT_FILENO)) + "\n")
                try out.flush()
                return .success
            }
        }
    }
}

/// pause, resume, cancel and delete: one request, one line of confirmation.
private func control(_ op: String, job: String, connection: ConnectionOptions, done: String) throws {
    try runReportingErrors {
        let reply = try connection.connect().request(op, [("job", .string(job))])
        let state = reply["state"]?.stringValue
        print(state.map { "\(job): \(done) (state \($0))" } ?? "\(job): \(done)")
        return .success
    }
}

extension LTCtl {
    struct Pause: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Pause a running job (it stops after the current step).")
        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var job: JobArgument
        func run() throws { try control("pause", job: job.name, connection: connection, done: "paused") }
    }

    struct Resume: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Resume a paused job.")
        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var job: JobArgument
        func run() throws { try control("resume", job: job.name, connection: connection, done: "resumed") }
    }

    struct Cancel: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Cancel a job; it keeps its events until deleted.")
        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var job: JobArgument
        func run() throws { try control("cancel", job: job.name, connection: connection, done: "cancel requested") }
    }

    struct Delete: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a finished, cancelled, diverged, failed or damaged job and its events.")
        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var job: JobArgument
        func run() throws { try control("delete", job: job.name, connection: connection, done: "deleted") }
    }

    struct Step: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Advance a paused job by N optimizer steps (default 1).",
            discussion: "Waits until the steps are taken and prints the new iteration, unless --no-wait.")

        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var job: JobArgument
        @Argument(help: "How many steps.") var count: Int = 1
        @Flag(help: "Return as soon as the daemon accepts the request.") var noWait = false

        func validate() throws {
            if count < 1 { throw ValidationError("the step count must be at least 1") }
        }

        func run() throws {
            try runReportingErrors {
                let conn = try connection.connect()
                if noWait {
                    try conn.request("step", [("job", .string(job.name)), ("count", JSONValue(count))])
                    print("\(job.name): stepping \(count)")
                    return .success
                }
                let status = try conn.request("status", [("job", .string(job.name))])["status"]
                let start = status?["iteration"]?.intValue ?? 0
                let target = start + count
                // Subscribe first, then step, so no step event can slip between the two.
                _ = try conn.subscribe(job: job.name, from: (status?["seq"]?.intValue ?? 0) + 1, types: ["step", "state", "end"])
                var iteration = start
                var final: String?
                func observe(_ event: JSONValue) {
                    switch event["type"]?.stringValue {
                    case "step": iteration = event["iteration"]?.intValue ?? iteration
                    case "state", "end":
                        if let s = event["state"]?.stringValue, !["running", "paused"].contains(s) { final = s }
                    default: break
                    }
                }
                try conn.request("step", [("job", .string(job.name)), ("count", JSONValue(count))], other: observe)
                while iteration < target && final == nil {
                    observe(try conn.readMessage())
                }
                if let final {
                    print("\(job.name): \(final) at iteration \(iteration)")
                } else {
                    print("\(job.name): paused at iteration \(iteration)")
                }
                return .success
            }
        }
    }
}
