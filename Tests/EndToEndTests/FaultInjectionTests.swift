import Foundation
import LTProtocol
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// SQLite-style I/O-error tests: for every N, ltd runs one short job's whole life (start, a few checkpoints, the end)
/// with the Nth write, fsync or rename of its state directory failing (the `LTD_FAULT_INJECTION` test hook, see
/// docs/RELIABILITY.md). After each fault, ltd is restarted without it, and nothing acknowledged may be lost: a job
/// whose `start` was answered `started` is still listed, and its log begins with every event its watcher saw before
/// a failure. N grows until a run's job no longer reaches the Nth call.
@Suite("ltd under injected file-system faults", .serialized)
struct FaultInjectionTests {
    /// 9 steps, 80 ms apart: epoch ends 240 ms apart, so the job writes checkpoints as it runs, not only at its end.
    static let spec = JobSpecs.noisyLine(rows: 12, epochs: 3, batch: 4, paceMs: 80)

    /// What one run saw.
    struct Outcome {
        var fired: Bool
        var failedJob = false
    }

    static func run(_ setting: String) throws -> Outcome {
        let directory = try Paths.temporaryDirectory("fault")
        let daemon: DaemonProcess
        do {
            daemon = try DaemonProcess.launch(directory: directory, environment: ["LTD_FAULT_INJECTION": setting])
        } catch {
            // The fault hit ltd's own start (recording the state directory's format): a clear refusal, exit 1.
            let text = "\(error)"
            #expect(text.contains("fault injection: ") && text.contains("cannot use the state directory"), "\(setting): \(text)")
            return Outcome(fired: true)
        }
        defer { daemon.cleanUp() }
        let client = try LineClient(path: daemon.socketPath)
        let started = try client.request("{\"op\":\"start\",\"job\":\"j\",\"spec\":\(spec)}")
        let acknowledged = started["type"]?.stringValue == "started"
        var stream: [[UInt8]] = []
        if acknowledged {
            let watcher = try LineClient(path: daemon.socketPath)
            #expect(try watcher.request("{\"op\":\"subscribe\",\"job\":\"j\"}")["type"]?.stringValue == "subscribed")
            do { stream = try watcher.readUntilEnd(timeout: .seconds(15)) } catch {
                Issue.record("\(setting): the watcher got no end: \(error)\n\(daemon.stderr)")
                return Outcome(fired: true)
            }
        } else {
            // Refused while its directory was written: said so, and nothing of it is left.
            #expect(started["code"]?.stringValue == "internal", "\(setting): \(started)")
            #expect(started["message"]?.stringValue?.contains("cannot record job j") == true, "\(setting): \(started)")
        }
        var outcome = Outcome(fired: daemon.stderr.contains("fault injection: "))
        // Events before a failure are acknowledged; a `failed` state the failure caused may be all that follows.
        let failure = stream.firstIndex { line in
            line.starts(with: Array("{\"type\":\"state\"".utf8)) && String(decoding: line, as: UTF8.self).contains("stopped because")
        }
        outcome.failedJob = failure != nil
        let seen = Array(stream.prefix(failure ?? stream.count))
        #expect(try daemon.stop() == 0, "\(setting)")

        try daemon.start()
        let again = try LineClient(path: daemon.socketPath)
        let status = try again.request("{\"op\":\"status\",\"job\":\"j\"}")
        guard acknowledged else {
            #expect(status["code"]?.stringValue == "unknown_job", "\(setting): \(status)")
            #expect(try again.request("{\"op\":\"start\",\"job\":\"j\",\"spec\":\(spec)}")["type"]?.stringValue == "started", "\(setting)")
            #expect(try daemon.stop() == 0)
            return outcome
        }
        #expect(status["type"]?.stringValue == "status", "\(setting): the acknowledged job is not listed: \(status)")
        // Failed (the final checkpoint was written), or resumed from the last good checkpoint and run to its end.
        try waitUntil("job j to end after the restart (\(setting))", timeout: .seconds(30)) {
            let state = try again.request("{\"op\":\"status\",\"job\":\"j\"}")["status"]?["state"]?.stringValue
            return state == "finished" || state == "failed"
        }
        let final = try again.request("{\"op\":\"status\",\"job\":\"j\"}")["status"]?["state"]?.stringValue
        let log = try NDJSON.lines(ofFile: daemon.logPath(job: "j"))
        #expect(log.starts(with: seen), "\(setting): the log lost acknowledged events (\(log.count) lines, \(seen.count) seen)")
        if failure == nil {
            // No failure reached the watcher: the job finished, perhaps after resuming from an older checkpoint
            // (training is deterministic, so it wrote again exactly what its watcher saw).
            #expect(final == "finished" && log == stream, "\(setting)")
        }
        #expect(try again.request("{\"op\":\"delete\",\"job\":\"j\"}")["type"]?.stringValue == "ok", "\(setting)")
        #expect(try daemon.stop() == 0)
        return outcome
    }

    /// Runs N = 1, 2, … until the fault no longer fires; returns how many runs it fired in.
    static func everyN(_ operation: String, persistent: Bool) throws -> (fired: Int, failedJobs: Int) {
        var fired = 0, failedJobs = 0
        for n in 1...200 {
            let outcome = try run("\(operation):\(n)\(persistent ? "+" : "")")
            guard outcome.fired else {
                print("fault injection, \(operation)\(persistent ? " from the Nth on" : ""): fired in \(fired) runs, \(failedJobs) of them failed the job")
                return (fired, failedJobs)
            }
            fired += 1
            if outcome.failedJob { failedJobs += 1 }
        }
        Issue.record("\(operation) still fires after 200 calls")
        return (fired, failedJobs)
    }

    @Test("every single write, fsync or rename of a job's life may fail: nothing acknowledged is lost, the job stays listed",
          arguments: ["write", "fsync", "rename"])
    func eachCallFailsOnce(operation: String) throws {
        let (fired, failedJobs) = try Self.everyN(operation, persistent: false)
        // A short job's life makes several of each call (the format file, the job's files, checkpoints, its log).
        #expect(fired >= 4, "\(operation): \(fired)")
        #expect(failedJobs >= 1, "\(operation): no fault made the job fail")
    }

    @Test("a delete whose rename fails says so and keeps the job whole; deleting it later works")
    func deleteWhoseRenameFails() throws {
        let daemon = try DaemonProcess.launch(tag: "fault-delete")
        defer { daemon.cleanUp() }
        let client = try LineClient(path: daemon.socketPath)
        #expect(try client.request("{\"op\":\"start\",\"job\":\"j\",\"spec\":\(JobSpecs.noisyLine(rows: 12, epochs: 3, batch: 4))}")["type"]?.stringValue == "started")
        let watcher = try LineClient(path: daemon.socketPath)
        _ = try watcher.request("{\"op\":\"subscribe\",\"job\":\"j\"}")
        let stream = try watcher.readUntilEnd()
        #expect(try daemon.stop() == 0)

        // Every rename fails from the first on: delete's rename of the job's directory is the first one here.
        try daemon.start(environment: ["LTD_FAULT_INJECTION": "rename:1+"])
        let broken = try LineClient(path: daemon.socketPath)
        let refused = try broken.request("{\"op\":\"delete\",\"job\":\"j\"}")
        #expect(refused["code"]?.stringValue == "internal", "\(refused)")
        #expect(refused["message"]?.stringValue?.contains("cannot remove job j's files") == true, "\(refused)")
        #expect(try broken.request("{\"op\":\"status\",\"job\":\"j\"}")["status"]?["state"]?.stringValue == "finished")
        let again = try LineClient(path: daemon.socketPath)
        _ = try again.request("{\"op\":\"subscribe\",\"job\":\"j\"}")
        #expect(try again.readUntilEnd() == stream, "the job's events after the failed delete")
        #expect(daemon.stderr.contains("fault injection: "))
        #expect(try daemon.stop() == 0)

        try daemon.start()
        let healthy = try LineClient(path: daemon.socketPath)
        #expect(try healthy.request("{\"op\":\"delete\",\"job\":\"j\"}")["type"]?.stringValue == "ok")
        #expect(try healthy.request("{\"op\":\"status\",\"job\":\"j\"}")["code"]?.stringValue == "unknown_job")
        #expect(try daemon.stop() == 0)
    }

    @Test("a disk that stays broken from the Nth write or fsync on: the same", arguments: ["write", "fsync"])
    func everyCallFailsFromTheNth(operation: String) throws {
        let (fired, _) = try Self.everyN(operation, persistent: true)
        #expect(fired >= 4, "\(operation): \(fired)")
    }
}
