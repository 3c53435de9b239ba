import Foundation
import LTProtocol
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Restore in the background (docs/DAEMON.md, "Checkpoints and restart"): a real ltd on a state directory of many
/// jobs says ready before it has read them, answers `list` with every one of them, lists directories it cannot
/// read as `damaged` without touching their files, and shuts down cleanly on a signal in the middle of it all.
@Suite("restore in the background", .serialized)
struct RestoreTests {
    static let files = ["spec.json", "meta.json", "events.ndjson", "checkpoint.json"]

    static func name(_ i: Int) -> String { "j" + String(repeating: "0", count: max(0, 4 - String(i).count)) + String(i) }

    /// A stopped daemon whose state directory holds `count` finished jobs `j0000`, `j0001`, …: `j0000` run to its end
    /// by the real ltd, the others copies of its directory with the name changed (same length, so every offset in
    /// the checkpoints still holds).
    static func finishedJobs(_ count: Int, rows: Int, tag: String) throws -> DaemonProcess {
        let daemon = try DaemonProcess.launch(tag: tag)
        let control = try LineClient(path: daemon.socketPath)
        let spec = JobSpecs.noisyLine(rows: rows, epochs: 1, batch: rows)
        #expect(try control.request("{\"op\":\"start\",\"job\":\"j0000\",\"spec\":\(spec)}")["type"]?.stringValue == "started")
        let watcher = try LineClient(path: daemon.socketPath)
        _ = try watcher.request("{\"op\":\"subscribe\",\"job\":\"j0000\"}")
        _ = try watcher.readUntilEnd()
        #expect(try daemon.stop() == 0)
        let jobs = daemon.stateDirectory + "/owners/\(getuid())/"
        let originals = try files.map { Array(try Data(contentsOf: URL(fileURLWithPath: jobs + "j0000/" + $0))) }
        let original = Array("\"j0000\"".utf8)
        for i in 1..<count {
            let job = name(i)
            guard mkdir(jobs + job, 0o700) == 0 else { throw HarnessFailure("mkdir \(jobs + job): errno \(errno)") }
            for (file, bytes) in zip(files, originals) {
                try write(renaming(bytes, from: original, to: Array("\"\(job)\"".utf8)), to: jobs + job + "/" + file)
            }
        }
        return daemon
    }

    /// Starts the stopped `daemon`, adds job `name` paused after `steps` steps, and stops it again.
    static func addPausedJob(_ name: String, steps: Int, to daemon: DaemonProcess) throws {
        // The copied finished jobs all belong to this uid, beyond the default per-user job limit.
        try daemon.start(arguments: ["--max-jobs-per-user", "100000"])
        let control = try LineClient(path: daemon.socketPath)
        let spec = JobSpecs.noisyLine(rows: 12, epochs: 50, batch: 4, paused: true)
        #expect(try control.request("{\"op\":\"start\",\"job\":\"\(name)\",\"spec\":\(spec)}")["type"]?.stringValue == "started")
        #expect(try control.request("{\"op\":\"step\",\"job\":\"\(name)\",\"count\":\(steps)}")["type"]?.stringValue == "ok")
        try waitUntil("\(name) to take \(steps) steps") {
            try control.request("{\"op\":\"status\",\"job\":\"\(name)\"}")["status"]?["iteration"]?.intValue == steps
        }
        #expect(try daemon.stop() == 0)
    }

    /// `bytes` with every `from` replaced by `to` (of the same length).
    static func renaming(_ bytes: [UInt8], from: [UInt8], to: [UInt8]) -> [UInt8] {
        var out = bytes
        out.withUnsafeMutableBytes { raw in
            guard let base = raw.baseAddress else { return }
            var offset = 0
            while offset + from.count <= raw.count, let hit = memchr(base + offset, Int32(from[0]), raw.count - offset) {
                offset = base.distance(to: hit)
                guard offset + from.count <= raw.count else { break }
                if memcmp(hit, from, from.count) == 0 {
                    to.withUnsafeBytes { source in source.baseAddress.map { hit.copyMemory(from: $0, byteCount: to.count) } }
                    offset += to.count
                } else {
                    offset += 1
                }
            }
        }
        return out
    }

    static func write(_ bytes: [UInt8], to path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw HarnessFailure("open \(path): errno \(errno)") }
        defer { close(fd) }
        let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        guard written == bytes.count else { throw HarnessFailure("write \(path): errno \(errno)") }
    }

    /// ltctl claims no progress for a damaged job (the daemon's 0 of 0 steps is no 100%): "-" in the tables of
    /// `list`, `list --sort` and `board`, null in their --json and in `status --json`; a finished job keeps its 100.0%.
    static func expectNoProgressClaimed(for damaged: Set<String>, daemon: DaemonProcess) throws {
        for arguments in [["list"], ["list", "--sort", "rmse"], ["board", "--once"]] {
            let result = try daemon.ltctl(arguments)
            #expect(result.status == 0, "\(arguments): \(result.stderr)")
            let rows = result.stdout.split(separator: "\n").map(String.init)
            for job in damaged {
                let row = rows.first { line in line.split(separator: " ").contains { $0 == job || $0 == "root/" + job } }
                #expect(row?.contains("damaged") == true && row?.contains("%") == false, "\(arguments): \(job): \(row ?? "no row")")
            }
            #expect(rows.contains { $0.contains("j0000") && $0.contains("100.0%") }, "\(arguments):\n\(result.stdout)")
        }
        for arguments in [["list", "--json"], ["list", "--sort", "rmse", "--json"], ["board", "--json"]] {
            let listed = try JSONParser.parse(Array(try daemon.ltctl(arguments).stdout.utf8)).arrayValue ?? []
            for status in listed {
                let job = status["job"]?.stringValue ?? "?"
                let progress = status["progress"]
                #expect(damaged.contains(job) ? progress?.isNull == true : progress?.doubleValue != nil, "\(arguments): \(job): \(String(describing: progress))")
            }
            #expect(listed.count == 5, "\(arguments)")
        }
        for job in damaged {
            let status = try JSONParser.parse(Array(try daemon.ltctl(["status", job, "--json"]).stdout.utf8))
            #expect(status["progress"]?.isNull == true, "\(job)")
        }
    }

    /// Every file of every job directory, by "job/file".
    static func snapshot(_ daemon: DaemonProcess) throws -> [String: Data] {
        let jobs = daemon.stateDirectory + "/owners/\(getuid())/"
        var all: [String: Data] = [:]
        for job in try FileManager.default.contentsOfDirectory(atPath: jobs) {
            for file in try FileManager.default.contentsOfDirectory(atPath: jobs + job) {
                all[job + "/" + file] = try Data(contentsOf: URL(fileURLWithPath: jobs + job + "/" + file))
            }
        }
        return all
    }

    @Test("2,000 finished jobs: ready before they are read, then list and status name every one")
    func manyFinishedJobs() throws {
        let count = 2_000
        let daemon = try Self.finishedJobs(count, rows: 12, tag: "restore-many")
        defer { daemon.cleanUp() }
        let before = daemon.stderr.count
        try daemon.start()
        let client = try LineClient(path: daemon.socketPath)
        #expect(try client.request("{\"op\":\"hello\"}")["type"]?.stringValue == "hello")
        // A job restore may not have read yet: the request waits for it instead of getting unknown_job.
        let last = try client.request("{\"op\":\"status\",\"job\":\"\(Self.name(count - 1))\"}", timeout: .seconds(300))
        #expect(last["status"]?["state"]?.stringValue == "finished")
        let jobs = try client.request("{\"op\":\"list\"}")["jobs"]?.arrayValue ?? []
        #expect(jobs.count == count)
        #expect(jobs.map { $0["job"]?.stringValue ?? "" } == (0..<count).map(Self.name))
        #expect(jobs.allSatisfy { $0["state"]?.stringValue == "finished" && $0["iteration"]?.intValue == 1 })
        let unknown = try client.request("{\"op\":\"status\",\"job\":\"nope\"}")
        #expect(unknown["code"]?.stringValue == "unknown_job")
        // READY=1 (the "ready" line) comes before restore has read the jobs, not after.
        let log = String(daemon.stderr.dropFirst(before))
        let ready = try #require(log.range(of: "ready: "))
        let restored = try #require(log.range(of: "restored \(count) job(s): 0 resumed, 0 damaged"))
        #expect(ready.lowerBound < restored.lowerBound)
        // A copied job serves its events under its own name, from the file.
        let watcher = try LineClient(path: daemon.socketPath)
        _ = try watcher.request("{\"op\":\"subscribe\",\"job\":\"j1234\"}")
        let events = try watcher.readUntilEnd()
        #expect(events.count > 3)
        #expect(events.allSatisfy { String(decoding: $0, as: UTF8.self).contains("\"job\":\"j1234\"") })
        #expect(try daemon.stop() == 0)
    }

    @Test("SIGTERM during a slow restore: exit 0, every file as it was, and the next start restores everything")
    func sigtermDuringRestore() throws {
        let count = 150
        let daemon = try Self.finishedJobs(count, rows: 20_000, tag: "restore-term")
        defer { daemon.cleanUp() }
        // Plus one unfinished job, named to be read last.
        try Self.addPausedJob("zpaused", steps: 3, to: daemon)
        let before = try Self.snapshot(daemon)
        let logStart = daemon.stderr.count

        try daemon.start()
        daemon.signal(SIGTERM)
        #expect(try daemon.waitForExit() == 0)
        let log = String(daemon.stderr.dropFirst(logStart))
        #expect(log.contains("SIGTERM: shutting down"))
        #expect(log.contains("restore stopped by shutdown after"), "restore was over before SIGTERM: \(log)")
        #expect(try Self.snapshot(daemon) == before)

        try daemon.start()
        let client = try LineClient(path: daemon.socketPath)
        // `list` waits for the whole restore: seconds of spec parsing in a debug build on a loaded machine.
        let jobs = try client.request("{\"op\":\"list\"}", timeout: .seconds(300))["jobs"]?.arrayValue ?? []
        #expect(jobs.count == count + 1)
        let paused = try client.request("{\"op\":\"status\",\"job\":\"zpaused\"}")["status"]
        #expect(paused?["state"]?.stringValue == "paused")
        #expect(paused?["iteration"]?.intValue == 3)
        #expect(try daemon.stop() == 0)
    }

    @Test("SIGHUP and SIGINT shut down as SIGTERM does: checkpoints written, exit 0, the job resumes")
    func hangupAndInterrupt() throws {
        let daemon = try DaemonProcess.launch(tag: "restore-hup")
        defer { daemon.cleanUp() }
        let control = try LineClient(path: daemon.socketPath)
        let spec = JobSpecs.noisyLine(rows: 12, epochs: 100_000, batch: 1, paceMs: 1)
        #expect(try control.request("{\"op\":\"start\",\"job\":\"long\",\"spec\":\(spec)}")["type"]?.stringValue == "started")
        for (number, name) in [(SIGHUP, "SIGHUP"), (SIGINT, "SIGINT")] {
            let client = try LineClient(path: daemon.socketPath)
            try waitUntil("long to take some steps") {
                (try client.request("{\"op\":\"status\",\"job\":\"long\"}")["status"]?["iteration"]?.intValue ?? 0) > 20
            }
            let logStart = daemon.stderr.count
            daemon.signal(number)
            #expect(try daemon.waitForExit() == 0, "\(name)")
            #expect(String(daemon.stderr.dropFirst(logStart)).contains("\(name): shutting down; checkpointing 1 active job(s)"))
            let log = try NDJSON.lines(ofFile: daemon.logPath(job: "long"))
            let checkpoint = try JSONParser.parse(try Data(contentsOf: URL(fileURLWithPath: daemon.checkpointPath(job: "long"))))
            #expect(checkpoint["seq"]?.intValue == log.count, "\(name)")
            #expect(checkpoint["state"]?.stringValue == "running", "\(name)")
            try daemon.start()
            let status = try LineClient(path: daemon.socketPath).request("{\"op\":\"status\",\"job\":\"long\"}")
            #expect(status["status"]?["state"]?.stringValue == "running", "\(name)")
            #expect((status["status"]?["seq"]?.intValue ?? 0) >= log.count, "\(name)")
        }
        #expect(try daemon.stop() == 0)
    }

    @Test("unreadable checkpoint, spec or log: listed damaged with the reason, files untouched, deletable")
    func damagedJobs() throws {
        let daemon = try Self.finishedJobs(4, rows: 12, tag: "restore-damaged")
        defer { daemon.cleanUp() }
        // An unfinished job, for a log shorter than its checkpoint promises.
        try Self.addPausedJob("short", steps: 5, to: daemon)
        let jobs = daemon.stateDirectory + "/owners/\(getuid())/"
        try Data("{\"version\":1,\"seq\":".utf8).write(to: URL(fileURLWithPath: jobs + "j0001/checkpoint.json"))
        try Data("{\"data\":".utf8).write(to: URL(fileURLWithPath: jobs + "j0002/spec.json"))
        let shortLog = try Data(contentsOf: URL(fileURLWithPath: jobs + "short/events.ndjson"))
        try shortLog.prefix(shortLog.count / 2).write(to: URL(fileURLWithPath: jobs + "short/events.ndjson"))
        let before = try Self.snapshot(daemon)

        try daemon.start()
        let client = try LineClient(path: daemon.socketPath)
        let listed = try client.request("{\"op\":\"list\"}")["jobs"]?.arrayValue ?? []
        let states = Dictionary(uniqueKeysWithValues: listed.map { ($0["job"]?.stringValue ?? "", $0["state"]?.stringValue ?? "") })
        #expect(states == ["j0000": "finished", "j0001": "damaged", "j0002": "damaged", "j0003": "finished", "short": "damaged"])
        for (job, mentions) in [("j0001", "checkpoint.json"), ("j0002", "spec.json"), ("short", "but the log holds")] {
            let status = try client.request("{\"op\":\"status\",\"job\":\"\(job)\"}")["status"]
            #expect(status?["state"]?.stringValue == "damaged")
            #expect(status?["owner"]?.intValue == Int(getuid()))
            #expect(status?["reason"]?.stringValue?.contains(mentions) == true, "\(job): \(status?["reason"]?.stringValue ?? "no reason")")
            let subscribed = try client.request("{\"op\":\"subscribe\",\"job\":\"\(job)\"}")
            #expect(subscribed["code"]?.stringValue == "wrong_state")
            #expect(subscribed["message"]?.stringValue?.contains("ltctl delete \(job)") == true)
        }
        #expect(try client.request("{\"op\":\"status\",\"job\":\"j0000\"}")["status"]?["reason"] == nil)
        // Nothing of theirs was touched: not the short log, not the unreadable files.
        #expect(try Self.snapshot(daemon) == before)

        // ltctl shows the state and the reason.
        let table = try daemon.ltctl(["list"])
        #expect(table.status == 0)
        #expect(table.stdout.contains("damaged"))
        #expect(table.stdout.contains("Damaged (ltd could not read them"))
        #expect(table.stdout.contains("short: ") && table.stdout.contains("but the log holds"))
        let status = try daemon.ltctl(["status", "j0002"])
        #expect(status.stdout.contains("j0002: damaged"))
        #expect(status.stdout.contains("spec.json"))
        let json = try daemon.ltctl(["status", "j0001", "--json"])
        #expect(try JSONParser.parse(Array(json.stdout.utf8))["reason"]?.stringValue?.contains("checkpoint.json") == true)
        try Self.expectNoProgressClaimed(for: ["j0001", "j0002", "short"], daemon: daemon)

        // Still damaged, and still there, after another restart.
        #expect(try daemon.stop() == 0)
        try daemon.start()
        let again = try LineClient(path: daemon.socketPath)
        #expect(try again.request("{\"op\":\"status\",\"job\":\"short\"}")["status"]?["state"]?.stringValue == "damaged")
        #expect(try daemon.ltctl(["delete", "short"]).status == 0)
        #expect(try again.request("{\"op\":\"status\",\"job\":\"short\"}")["code"]?.stringValue == "unknown_job")
        try waitUntil("short's directory to be removed") { !FileManager.default.fileExists(atPath: jobs + "short") }
        #expect(try daemon.stop() == 0)
    }
}
