import ArgumentParser
import Foundation
import LTClient
import LTProtocol

extension LTCtl {
    struct Prune: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete your jobs that are over (--all: everyone's), optionally only those that ended long ago.",
            discussion: """
            Removes jobs that are finished, cancelled, diverged or failed, with their events, as `ltctl delete` \
            does; running, paused and damaged jobs are never pruned (delete a damaged one by name). \
            --older-than 7d keeps the jobs that ended less than 7 days ago (s, m, h or d; default: prune every job \
            that is over). --all prunes every user's jobs: only root and members of the daemon's admin group \
            (ltd --admin-group, default ltd-admin) may. --dry-run lists what would go and removes nothing. \
            --json prints the daemon's reply: {"type":"pruned","jobs":[…],"failed":[…],…}.
            The daemon can also prune by itself: ltd --keep-finished 14d.
            Exit status: 0 when everything chosen was removed (or nothing was chosen), 1 when the daemon refused \
            (permission_denied without the right to --all) or some files could not be removed.
            """)

        @OptionGroup var connection: ConnectionOptions
        @Option(name: .customLong("older-than"), help: ArgumentHelp("Only jobs that ended longer ago than this (e.g. 30m, 12h, 7d).", valueName: "duration"))
        var olderThan: String?
        @Flag(help: "Prune every user's jobs (root or the admin group only).") var all = false
        @Flag(name: .customLong("dry-run"), help: "List the jobs that would be pruned; remove nothing.") var dryRun = false
        @Flag(help: "Print the daemon's reply as JSON.") var json = false

        func validate() throws {
            if let olderThan, DurationText.seconds(olderThan) == nil {
                throw ValidationError("--older-than must be \(DurationText.rule); got \(olderThan)")
            }
        }

        func run() throws {
            try runReportingErrors {
                let daemon = try connection.connect()
                try daemon.require(.prune, for: "prune jobs")
                let seconds = olderThan.flatMap(DurationText.seconds) ?? 0
                var fields: [(key: String, value: JSONValue)] = [("older_than_seconds", JSONValue(seconds))]
                if all { fields.append(("all", .bool(true))) }
                if dryRun { fields.append(("dry_run", .bool(true))) }
                let reply = try daemon.request("prune", fields)
                let pruned = reply["jobs"]?.arrayValue ?? []
                let failed = reply["failed"]?.arrayValue ?? []
                let out = BufferedOutput(fd: STDOUT_FILENO)
                if json {
                    try out.write(reply.serialized + "\n")
                } else {
                    try out.write(Self.report(pruned, failed: failed, olderThan: seconds, all: all, dryRun: dryRun))
                }
                try out.flush()
                return failed.isEmpty ? .success : .refused
            }
        }

        static func report(_ pruned: [JSONValue], failed: [JSONValue], olderThan: Int, all: Bool, dryRun: Bool) -> String {
            let whose = all ? "" : " of yours"
            let age = olderThan > 0 ? " and ended more than \(DurationText.describe(olderThan)) ago" : ""
            var text = ""
            if pruned.isEmpty && failed.isEmpty {
                text = "No jobs\(whose) are over\(age); nothing to prune.\n"
            } else if !pruned.isEmpty {
                text = "\(dryRun ? "Would prune" : "Pruned") \(Format.count(pruned.count, "job"))\(whose) that \(pruned.count == 1 ? "is" : "are") over\(age):\n"
                text += lines(pruned)
            }
            if !failed.isEmpty {
                text += "Could not prune \(Format.count(failed.count, "job")) (see ltd's log):\n" + lines(failed)
            }
            return text
        }

        private static func lines(_ jobs: [JSONValue]) -> String {
            let names = jobs.map { $0["full_name"]?.stringValue ?? $0["job"]?.stringValue ?? "?" }
            let width = names.map(\.count).max() ?? 0
            return zip(names, jobs).map { name, job in
                let state = job["state"]?.stringValue ?? "?"
                let error = job["error"]?.stringValue.map { ": " + $0 } ?? ""
                return "  \(Format.padRight(name, width))  \(Format.padRight(state, 9))  ended \(job["ended"]?.stringValue ?? "?")\(error)\n"
            }.joined()
        }
    }
}
