import Foundation
import LTProtocol
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Disk limits (`--max-log-bytes`, `--max-state-bytes`, `--max-jobs-per-user`) and a state directory that is not
/// trusted blindly, against a real ltd.
@Suite("ltd's disk limits and state checks", .serialized)
struct DiskLimitTests {
    static func start(_ client: LineClient, _ job: String, _ spec: String) throws -> JSONValue {
        try client.request("{\"op\":\"start\",\"job\":\"\(job)\",\"spec\":\(spec)}")
    }

    static func state(_ client: LineClient, _ job: String) throws -> String? {
        try client.request("{\"op\":\"status\",\"job\":\"\(job)\"}")["status"]?["state"]?.stringValue
    }

    static func waitForEnd(_ client: LineClient, _ job: String) throws {
        try waitUntil("job \(job) to end", timeout: .seconds(60)) {
            let state = try state(client, job)
            return state != "running" && state != "paused"
        }
    }

    /// The `end` of a job stopped by its disk reports the last step its log holds, not one that was dropped.
    static func expectEndMatchesLastStep(_ stream: [[UInt8]]) throws {
        let end = try JSONParser.parse(try #require(stream.last).dropLast())
        let step = try JSONParser.parse(try #require(stream.last { $0.starts(with: Array("{\"type\":\"step\"".utf8)) }).dropLast())
        #expect(end["iteration"]?.intValue == step["iteration"]?.intValue, "end \(end), last step \(step["iteration"] ?? .null)")
        #expect(end["w"]?.doubleValue == step["w_after"]?.doubleValue)
    }

    @Test("start refuses a job whose steps cannot fit in --max-log-bytes, giving the numbers")
    func tooLongForTheLogLimit() throws {
        let daemon = try DaemonProcess.launch(tag: "loglimit", arguments: ["--max-log-bytes", "65536"])
        defer { daemon.cleanUp() }
        let client = try LineClient(path: daemon.socketPath)
        // 12 rows, batch 1, 30 epochs: 360 steps, at least 360 × 200 + 12 × 4 = 72048 bytes.
        let refused = try Self.start(client, "long", JobSpecs.noisyLine(rows: 12, epochs: 30, batch: 1))
        #expect(refused["code"]?.stringValue == "disk_limit", "\(refused)")
        let message = refused["message"]?.stringValue ?? ""
        #expect(message.contains("360 steps on 12 rows"), "\(message)")
        #expect(message.contains("at least 72048 bytes"), "\(message)")
        #expect(message.contains("65536 bytes of log per job (ltd --max-log-bytes)"), "\(message)")
        #expect(refused["field"]?.stringValue == "epochs")
        #expect(try client.request("{\"op\":\"status\",\"job\":\"long\"}")["code"]?.stringValue == "unknown_job")
        // Numbers past any limit (and past Int64 when multiplied) are refused the same way, not trapped.
        let huge = try Self.start(client, "huge", JobSpecs.noisyLine(rows: 12, epochs: 1_000_000, batch: 1))
        #expect(huge["code"]?.stringValue == "disk_limit", "\(huge)")
        #expect(huge["message"]?.stringValue?.contains("12000000 steps") == true, "\(huge)")
        #expect(try Self.start(client, "short", JobSpecs.noisyLine())["type"]?.stringValue == "started")
        #expect(try daemon.stop() == 0)
    }

    @Test("a job that writes past --max-log-bytes fails naming the limit; its log keeps every event its watchers saw")
    func jobReachesTheLogLimit() throws {
        let daemon = try DaemonProcess.launch(tag: "logfull", arguments: ["--max-log-bytes", "65536"])
        defer { daemon.cleanUp() }
        let client = try LineClient(path: daemon.socketPath)
        // 300 steps: at least 60048 bytes by the estimate, so accepted; real step events take about 400.
        let spec = JobSpecs.noisyLine(rows: 12, epochs: 25, batch: 1, paused: true)
        #expect(try Self.start(client, "grows", spec)["type"]?.stringValue == "started")
        let watcher = try LineClient(path: daemon.socketPath)
        #expect(try watcher.request("{\"op\":\"subscribe\",\"job\":\"grows\"}")["type"]?.stringValue == "subscribed")
        #expect(try client.request("{\"op\":\"resume\",\"job\":\"grows\"}")["type"]?.stringValue == "ok")
        let stream = try watcher.readUntilEnd()
        let final = try JSONParser.parse(stream[stream.count - 2].dropLast())
        #expect(final["state"]?.stringValue == "failed")
        #expect(final["message"]?.stringValue?.contains("limit of 65536 bytes per job (ltd --max-log-bytes)") == true, "\(final)")
        let log = try NDJSON.lines(ofFile: daemon.logPath(job: "grows"))
        #expect(log == stream, "the log holds exactly what the watcher saw, final state and end included")
        try Self.expectEndMatchesLastStep(stream)
        let size = log.reduce(0) { $0 + $1.count }
        #expect(size > 60_000 && size <= 65_536 + 1024, "\(size) bytes")
        #expect(try Self.state(client, "grows") == "failed")
        // After a restart it is still there, failed, and can be deleted.
        #expect(try daemon.stop() == 0)
        try daemon.start(arguments: ["--max-log-bytes", "65536"])
        let again = try LineClient(path: daemon.socketPath)
        #expect(try Self.state(again, "grows") == "failed")
        #expect(try again.request("{\"op\":\"delete\",\"job\":\"grows\"}")["type"]?.stringValue == "ok")
        #expect(try daemon.stop() == 0)
    }

    @Test("start refuses a job that would take the state past --max-state-bytes, until finished jobs are deleted")
    func stateLimit() throws {
        let arguments = ["--max-log-bytes", "65536", "--max-state-bytes", "100000"]
        let daemon = try DaemonProcess.launch(tag: "statelimit", arguments: arguments)
        defer { daemon.cleanUp() }
        let client = try LineClient(path: daemon.socketPath)
        // About 50 KB of log: 120 steps.
        #expect(try Self.start(client, "first", JobSpecs.noisyLine(rows: 12, epochs: 10, batch: 1))["type"]?.stringValue == "started")
        try Self.waitForEnd(client, "first")
        #expect(try Self.state(client, "first") == "finished")
        let used = FileManager.default.contents(atPath: daemon.logPath(job: "first"))?.count ?? 0
        #expect(used > 40_000)
        // At least 240 × 200 + 48 + 48 = 48096 more: past 100000 with what "first" holds.
        let second = JobSpecs.noisyLine(rows: 12, epochs: 20, batch: 1)
        let refused = try Self.start(client, "second", second)
        #expect(refused["code"]?.stringValue == "disk_limit", "\(refused)")
        #expect(refused["message"]?.stringValue?.contains("needs at least 48096 more") == true, "\(refused)")
        #expect(refused["message"]?.stringValue?.contains("limit of 100000 bytes in all (ltd --max-state-bytes)") == true, "\(refused)")
        // The count survives a restart (it is taken from the files), and a delete gives the bytes back.
        #expect(try daemon.stop() == 0)
        try daemon.start(arguments: arguments)
        let again = try LineClient(path: daemon.socketPath)
        #expect(try Self.start(again, "second", second)["code"]?.stringValue == "disk_limit")
        #expect(try again.request("{\"op\":\"delete\",\"job\":\"first\"}")["type"]?.stringValue == "ok")
        #expect(try Self.start(again, "second", second)["type"]?.stringValue == "started")
        #expect(try daemon.stop() == 0)
    }

    @Test("--max-jobs-per-user refuses one uid's next job with too_many_jobs, naming the quota, until it deletes one")
    func jobsPerUser() throws {
        let daemon = try DaemonProcess.launch(tag: "peruser", arguments: ["--max-jobs-per-user", "2"])
        defer { daemon.cleanUp() }
        let client = try LineClient(path: daemon.socketPath)
        for name in ["one", "two"] {
            #expect(try Self.start(client, name, JobSpecs.noisyLine())["type"]?.stringValue == "started")
        }
        let refused = try Self.start(client, "three", JobSpecs.noisyLine())
        #expect(refused["code"]?.stringValue == "too_many_jobs")
        #expect(refused["message"]?.stringValue?.contains("you already keep 2 jobs") == true, "\(refused)")
        #expect(refused["message"]?.stringValue?.contains("--max-jobs-per-user 2") == true, "\(refused)")
        try Self.waitForEnd(client, "one")
        #expect(try client.request("{\"op\":\"delete\",\"job\":\"one\"}")["type"]?.stringValue == "ok")
        #expect(try Self.start(client, "three", JobSpecs.noisyLine())["type"]?.stringValue == "started")
        #expect(try daemon.stop() == 0)
    }

    @Test("a publish past an external job's log limit gets disk_limit; the job ends failed, its log intact")
    func publishPastTheLogLimit() throws {
        let daemon = try DaemonProcess.launch(tag: "publimit", arguments: ["--max-log-bytes", "65536"])
        defer { daemon.cleanUp() }
        let publisher = try LineClient(path: daemon.socketPath)
        let spec = JobSpecs.noisyLine(rows: 12, epochs: 25, batch: 1, optimizer: "sgd")
        #expect(try publisher.request("{\"op\":\"create\",\"job\":\"nb\",\"spec\":\(spec)}")["type"]?.stringValue == "started")
        let watcher = try LineClient(path: daemon.socketPath)
        #expect(try watcher.request("{\"op\":\"subscribe\",\"job\":\"nb\"}")["type"]?.stringValue == "subscribed")
        var refusal: JSONValue?
        var iteration = 0
        publishing: for epoch in 1...25 {
            for step in 1...12 {
                iteration += 1
                let event = "{\"type\":\"step\",\"epoch\":\(epoch),\"step\":\(step),\"iteration\":\(iteration),\"batch\":{\"size\":1,\"indices\":[\(step - 1)]},"
                    + "\"w_before\":0.123456789,\"b_before\":0.123456789,\"w_after\":0.123456789,\"b_after\":0.123456789,\"loss\":123.456789,\"rmse\":11.1111111,\"slots\":{\"kernel\":{},\"bias\":{}}}"
                let reply = try publisher.request("{\"op\":\"publish\",\"job\":\"nb\",\"event\":\(event)}")
                guard reply["type"]?.stringValue == "published" else { refusal = reply; break publishing }
            }
            let reply = try publisher.request("{\"op\":\"publish\",\"job\":\"nb\",\"event\":{\"type\":\"epoch\",\"epoch\":\(epoch),\"loss\":1,\"rmse\":1}}")
            guard reply["type"]?.stringValue == "published" else { refusal = reply; break publishing }
        }
        #expect(refusal?["code"]?.stringValue == "disk_limit", "\(String(describing: refusal))")
        #expect(refusal?["message"]?.stringValue?.contains("limit of 65536 bytes per job (ltd --max-log-bytes)") == true)
        #expect(iteration < 300)
        let stream = try watcher.readUntilEnd(timeout: .seconds(10))
        let final = try JSONParser.parse(stream[stream.count - 2].dropLast())
        #expect(final["state"]?.stringValue == "failed")
        #expect(try NDJSON.lines(ofFile: daemon.logPath(job: "nb")) == stream)
        try Self.expectEndMatchesLastStep(stream)
        let after = try publisher.request("{\"op\":\"publish\",\"job\":\"nb\",\"event\":{\"type\":\"end\",\"state\":\"cancelled\"}}")
        #expect(after["code"]?.stringValue == "wrong_state")
        #expect(try daemon.stop() == 0)
    }

    @Test("a state directory of a newer format is refused with exit 65; one without a format file gets it")
    func newerStateFormat() throws {
        let directory = try Paths.temporaryDirectory("format")
        defer { Paths.remove(directory) }
        let daemon = try DaemonProcess.launch(tag: "format", directory: directory)
        #expect(try String(contentsOfFile: daemon.stateDirectory + "/format", encoding: .utf8) == "1\n")
        #expect(try daemon.stop() == 0)
        try "2\n".write(toFile: daemon.stateDirectory + "/format", atomically: true, encoding: .utf8)
        let run = try Command.run([Paths.ltd, "--socket", daemon.socketPath, "--state-dir", daemon.stateDirectory])
        #expect(run.status == 65, "\(run)")
        #expect(run.stderr.contains("format version 2, newer than this ltd reads (1)"), "\(run.stderr)")
        // A directory from before the format file (no file) is this format: ltd writes the file and serves it.
        unlink(daemon.stateDirectory + "/format")
        try daemon.start()
        #expect(try String(contentsOfFile: daemon.stateDirectory + "/format", encoding: .utf8) == "1\n")
        #expect(try daemon.stop() == 0)
    }

    @Test("a crafted final checkpoint (seq = Int64.max) no longer traps ltd at start; its log is left alone")
    func craftedCheckpoint() throws {
        let daemon = try DaemonProcess.launch(tag: "crafted")
        defer { daemon.cleanUp() }
        let client = try LineClient(path: daemon.socketPath)
        #expect(try Self.start(client, "victim", JobSpecs.noisyLine())["type"]?.stringValue == "started")
        try Self.waitForEnd(client, "victim")
        #expect(try Self.start(client, "bystander", JobSpecs.noisyLine())["type"]?.stringValue == "started")
        try Self.waitForEnd(client, "bystander")
        #expect(try daemon.stop() == 0)
        let path = daemon.checkpointPath(job: "victim")
        let log = try NDJSON.lines(ofFile: daemon.logPath(job: "victim"))
        var text = try String(contentsOfFile: path, encoding: .utf8)
        let seq = try #require(text.range(of: #""seq":\d+"#, options: .regularExpression))
        text.replaceSubrange(seq, with: "\"seq\":9223372036854775807")
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        try daemon.start()
        let again = try LineClient(path: daemon.socketPath)
        #expect(try Self.state(again, "bystander") == "finished")
        #expect(daemon.stderr.contains("claims 9223372036854775807 event(s)"), "\(daemon.stderr)")
        #expect(try NDJSON.lines(ofFile: daemon.logPath(job: "victim")) == log)
        #expect(try daemon.stop() == 0)
    }
}
