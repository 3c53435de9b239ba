import ArgumentParser
import Foundation
import LTClient
import LTData
import LTProtocol

extension LTCtl {
    struct Replicate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Train ltd's replica of a job fed by the Keras bridge: same data, initial weights and optimizer.",
            discussion: """
            Starts a native job from the external job's recorded data, initial kernel and bias, optimizer \
            configuration, batch size, epochs and validation data (its start event's spec), then prints how to \
            compare them: `ltctl diff NAME NAME-replica`.

            A run that Keras shuffled after keras.utils.set_random_seed(S) is replicated with Keras's own order for \
            that seed (docs/SHUFFLE.md). A run shuffled without a seed cannot be replicated: nobody knows which rows \
            each step used. Re-run the notebook with shuffle=False, or after set_random_seed.
            """)

        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var job: JobArgument
        @Option(name: .customLong("as"), help: ArgumentHelp("The replica's name (default: JOB-replica).", valueName: "name"))
        var replicaName: String?
        @Flag(help: "Wait for the replica to finish, then print the diff against the job (exit 0 identical, 1 not).")
        var diff = false
        @Flag(help: "Print the replica's status object (with --diff, the diff) as JSON.") var json = false

        func run() throws {
            try runReportingErrors {
                let name = replicaName ?? job.shortName + "-replica"
                guard JobName.isValid(name) else { throw InputError("replica name \"\(name)\" is not valid; use \(JobName.rule)") }
                let conn = try connection.connect()
                let history = try JobHistory.read(job: job.name, from: conn)
                guard let start = history.start, let spec = start.value("spec") else {
                    throw InputError("\(job.name) has no start event yet; try again once its training has begun")
                }
                // A shuffled run is replicable when its spec records Keras's seed (the daemon reproduces that order).
                if start.bool("shuffled") == true, spec["shuffle"]?["seed"] == nil {
                    throw InputError("""
                        \(job.name) cannot be replicated: Keras shuffled its batches (shuffle=True, the default) with no \
                        global seed set, so the rows each step used are unknown. Re-run the notebook with \
                        shuffle=False (ltd_client.keras.fit(..., shuffle=False)), or after \
                        keras.utils.set_random_seed(S), then replicate that run.
                        """)
                }
                var members = spec.objectMembers ?? []
                members.removeAll { $0.key == "paused" || $0.key == "pace_ms" }
                let reply = try conn.request("start", [("job", .string(name)), ("spec", .object(members))])
                let out = BufferedOutput(fd: STDOUT_FILENO)
                if diff {
                    var state = try conn.request("status", [("job", .string(name))])["status"]?["state"]?.stringValue
                    while state == "running" || state == "paused" {
                        usleep(20_000)
                        state = try conn.request("status", [("job", .string(name))])["status"]?["state"]?.stringValue
                    }
                    let a = try JobHistory.read(job: job.name, from: conn)
                    let b = try JobHistory.read(job: name, from: conn)
                    let result = JobDiff(startA: a.start, stepsA: a.steps, startB: b.start, stepsB: b.steps)
                    try out.write(json ? result.json(a: job.name, b: name).serialized + "\n" : Diff.text(result, a: job.name, b: name))
                    try out.flush()
                    return result.identical ? .success : .refused
                }
                if json {
                    try out.write((reply["status"] ?? .object([])).serialized + "\n")
                } else {
                    try out.write("Started \(name), ltd's replica of \(job.name).\nCompare them with: ltctl diff \(job.name) \(name)\n")
                }
                try out.flush()
                return .success
            }
        }
    }
}
