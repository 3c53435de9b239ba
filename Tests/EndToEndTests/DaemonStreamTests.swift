import Foundation
import LTProtocol
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The real ltd binary, real sockets: streams are complete, ordered, identical for every subscriber, and survive
/// the daemon.
@Suite("ltd streams", .serialized)
struct DaemonStreamTests {
    /// seq runs 1...N, the stream opens with start and closes with end.
    func checkContiguous(_ lines: [[UInt8]], job: String) throws {
        #expect(!lines.isEmpty)
        for (i, line) in lines.enumerated() {
            let event = try JSONParser.parse(line.dropLast())
            #expect(event["seq"]?.intValue == i + 1, "line \(i) has seq \(String(describing: event["seq"]))")
            #expect(event["job"]?.stringValue == job)
        }
        #expect(lines.first.map { $0.starts(with: Array("{\"type\":\"start\"".utf8)) } == true)
        #expect(lines.last.map { $0.starts(with: Array("{\"type\":\"end\"".utf8)) } == true)
    }

    @Test("several subscribers and a late one get byte-identical streams, equal to the log")
    func identicalStreams() throws {
        let daemon = try DaemonProcess.launch(tag: "streams")
        defer { daemon.cleanUp() }
        let control = try LineClient(path: daemon.socketPath)
        let started = try control.request("{\"op\":\"start\",\"id\":1,\"job\":\"j1\",\"spec\":\(JobSpecs.noisyLine(rows: 12, epochs: 2000, batch: 1, paused: true))}")
        #expect(started["type"]?.stringValue == "started")
        var watchers: [LineClient] = []
        for _ in 0..<3 {
            let watcher = try LineClient(path: daemon.socketPath)
            let reply = try watcher.request("{\"op\":\"subscribe\",\"job\":\"j1\"}")
            #expect(reply["type"]?.stringValue == "subscribed")
            watchers.append(watcher)
        }
        #expect(try control.request("{\"op\":\"resume\",\"job\":\"j1\"}")["state"]?.stringValue == "running")
        let streams = try watchers.map { try $0.readUntilEnd() }
        let late = try LineClient(path: daemon.socketPath)
        let lateReply = try late.request("{\"op\":\"subscribe\",\"job\":\"j1\",\"from\":1}")
        #expect(lateReply["complete"]?.boolValue == false)
        let lateStream = try late.readUntilEnd()
        try checkContiguous(streams[0], job: "j1")
        #expect(streams[0].count == 24_000 + 2000 + 4 + 1)   // steps, epochs, start + 3 states, end
        for other in streams.dropFirst() + [lateStream] { #expect(other == streams[0]) }
        #expect(try NDJSON.lines(ofFile: daemon.logPath(job: "j1")) == streams[0])

        // Resuming from the middle sees exactly the rest; past the end the reply says complete.
        let resumer = try LineClient(path: daemon.socketPath)
        _ = try resumer.request("{\"op\":\"subscribe\",\"job\":\"j1\",\"from\":1000}")
        #expect(try resumer.readUntilEnd() == Array(streams[0][999...]))
        let past = try LineClient(path: daemon.socketPath)
        let pastReply = try past.request("{\"op\":\"subscribe\",\"job\":\"j1\",\"from\":\(streams[0].count + 1)}")
        #expect(pastReply["complete"]?.boolValue == true)
        #expect(try past.request("{\"op\":\"hello\"}")["type"]?.stringValue == "hello")

        // Filters: every 100th step plus every non-step event; types limit to epochs (end always comes).
        let sampled = try LineClient(path: daemon.socketPath)
        _ = try sampled.request("{\"op\":\"subscribe\",\"job\":\"j1\",\"every\":100}")
        let sampledLines = try sampled.readUntilEnd()
        let expected = try streams[0].filter { line in
            let event = try JSONParser.parse(line.dropLast())
            guard event["type"]?.stringValue == "step" else { return true }
            return (event["iteration"]?.intValue ?? 1) % 100 == 0
        }
        #expect(sampledLines == expected)
        let epochs = try LineClient(path: daemon.socketPath)
        _ = try epochs.request("{\"op\":\"subscribe\",\"job\":\"j1\",\"types\":[\"epoch\"]}")
        let epochLines = try epochs.readUntilEnd()
        #expect(epochLines.count == 2001)
        #expect(try daemon.stop() == 0)
    }

    @Test("kill -9 then restart resumes bit-identically")
    func killAndRestart() throws {
        let daemon = try DaemonProcess.launch(tag: "restart")
        defer { daemon.cleanUp() }
        let spec = JobSpecs.noisyLine(rows: 12, epochs: 4000, batch: 1)
        let control = try LineClient(path: daemon.socketPath)
        #expect(try control.request("{\"op\":\"start\",\"job\":\"a\",\"spec\":\(spec)}")["type"]?.stringValue == "started")
        #expect(try control.request("{\"op\":\"start\",\"job\":\"p\",\"spec\":\(JobSpecs.noisyLine(rows: 12, epochs: 4000, batch: 1, paused: true))}")["type"]?.stringValue == "started")
        #expect(try control.request("{\"op\":\"step\",\"job\":\"p\",\"count\":7}")["type"]?.stringValue == "ok")
        // Let "a" get somewhere, but not to the end.
        try waitUntil("job a to pass 2000 events", timeout: .seconds(30)) {
            let status = try control.request("{\"op\":\"status\",\"job\":\"a\"}")
            return (status["status"]?["seq"]?.intValue ?? 0) > 2000
        }
        // A stepped paused job checkpoints once it has been idle for 200 ms.
        try waitUntil("job p's checkpoint to hold its 7 steps", timeout: .seconds(30)) {
            let data = (try? Data(contentsOf: URL(fileURLWithPath: daemon.checkpointPath(job: "p")))) ?? Data()
            return (try? JSONParser.parse([UInt8](data)))?["summary"]?["iteration"]?.intValue == 7
        }
        try daemon.killHard()
        try daemon.start()
        let client = try LineClient(path: daemon.socketPath)
        let list = try client.request("{\"op\":\"list\"}")
        #expect(list["jobs"]?.arrayValue?.compactMap { $0["job"]?.stringValue } == ["a", "p"])
        let p = try client.request("{\"op\":\"status\",\"job\":\"p\"}")
        #expect(p["status"]?["state"]?.stringValue == "paused")
        #expect(p["status"]?["iteration"]?.intValue == 7)
        let watcher = try LineClient(path: daemon.socketPath)
        _ = try watcher.request("{\"op\":\"subscribe\",\"job\":\"a\"}")
        let resumed = try watcher.readUntilEnd()
        try checkContiguous(resumed, job: "a")
        // The same spec, uninterrupted, under another name.
        #expect(try client.request("{\"op\":\"start\",\"job\":\"b\",\"spec\":\(spec)}")["type"]?.stringValue == "started")
        let reference = try LineClient(path: daemon.socketPath)
        _ = try reference.request("{\"op\":\"subscribe\",\"job\":\"b\"}")
        let uninterrupted = try reference.readUntilEnd()
        let renamed = resumed.map { line in
            Array(String(decoding: line, as: UTF8.self).replacingOccurrences(of: "\"job\":\"a\"", with: "\"job\":\"b\"").utf8)
        }
        #expect(renamed.count == uninterrupted.count)
        #expect(renamed == uninterrupted)
        #expect(try NDJSON.lines(ofFile: daemon.logPath(job: "a")) == resumed)
        #expect(try daemon.stop() == 0)
    }

    @Test("SIGTERM: subscribers get everything written, checkpoints stay, exit 0, the job resumes")
    func gracefulShutdown() throws {
        let daemon = try DaemonProcess.launch(tag: "term")
        defer { daemon.cleanUp() }
        let control = try LineClient(path: daemon.socketPath)
        let spec = JobSpecs.noisyLine(rows: 12, epochs: 100_000, batch: 1, paceMs: 1)
        #expect(try control.request("{\"op\":\"start\",\"job\":\"long\",\"spec\":\(spec)}")["type"]?.stringValue == "started")
        let watcher = try LineClient(path: daemon.socketPath)
        _ = try watcher.request("{\"op\":\"subscribe\",\"job\":\"long\"}")
        for _ in 0..<50 { _ = try watcher.readLine() }
        daemon.signal(SIGTERM)
        var received: [[UInt8]] = []
        var farewell: JSONValue? = nil
        while let line = try watcher.readLine(timeout: .seconds(20)) {
            if line.starts(with: Array("{\"type\":\"error\"".utf8)) { farewell = try JSONParser.parse(line.dropLast()); continue }
            received.append(line)
        }
        #expect(try daemon.waitForExit() == 0)
        #expect(farewell?["code"]?.stringValue == "shutting_down")
        let log = try NDJSON.lines(ofFile: daemon.logPath(job: "long"))
        // The watcher read 50 lines before, and everything after them that reached the log.
        #expect(Array(log[50...]) == received)
        let checkpoint = try JSONParser.parse(try Data(contentsOf: URL(fileURLWithPath: daemon.checkpointPath(job: "long"))))
        #expect(checkpoint["seq"]?.intValue == log.count)
        #expect(checkpoint["state"]?.stringValue == "running")
        #expect(daemon.stderr.contains("SIGTERM"))
        try daemon.start()
        let after = try LineClient(path: daemon.socketPath)
        let status = try after.request("{\"op\":\"status\",\"job\":\"long\"}")
        #expect(status["status"]?["state"]?.stringValue == "running")
        _ = try after.request("{\"op\":\"subscribe\",\"job\":\"long\",\"from\":\(log.count + 1)}")
        let next = try JSONParser.parse(try #require(try after.readLine()).dropLast())
        #expect(next["seq"]?.intValue == log.count + 1)
        #expect(try daemon.stop() == 0)
    }

    @Test("pause, step, resume, cancel, delete and divergence each show up in the stream as documented")
    func lifecycle() throws {
        let daemon = try DaemonProcess.launch(tag: "life")
        defer { daemon.cleanUp() }
        let control = try LineClient(path: daemon.socketPath)
        #expect(try control.request("{\"op\":\"start\",\"job\":\"walk\",\"spec\":\(JobSpecs.noisyLine(rows: 12, epochs: 1000, batch: 4, paused: true))}")["type"]?.stringValue == "started")
        let watcher = try LineClient(path: daemon.socketPath)
        _ = try watcher.request("{\"op\":\"subscribe\",\"job\":\"walk\"}")
        func next() throws -> JSONValue { try watcher.readJSON(timeout: .seconds(20)) }
        #expect(try next()["type"]?.stringValue == "start")
        #expect(try next()["state"]?.stringValue == "paused")
        // Three steps end an epoch of three batches: the epoch event follows without another step.
        let stepped = try control.request("{\"op\":\"step\",\"job\":\"walk\",\"count\":3}")
        #expect(stepped["type"]?.stringValue == "ok")
        #expect(stepped["state"]?.stringValue == "paused")
        for iteration in 1...3 {
            let step = try next()
            #expect(step["type"]?.stringValue == "step")
            #expect(step["iteration"]?.intValue == iteration)
        }
        let epoch = try next()
        #expect(epoch["type"]?.stringValue == "epoch")
        #expect(epoch["seq"]?.intValue == 6)
        #expect(try control.request("{\"op\":\"status\",\"job\":\"walk\"}")["status"]?["iteration"]?.intValue == 3)
        #expect(try control.request("{\"op\":\"resume\",\"job\":\"walk\"}")["state"]?.stringValue == "running")
        #expect(try next()["state"]?.stringValue == "running")
        #expect(try control.request("{\"op\":\"pause\",\"job\":\"walk\"}")["state"]?.stringValue == "paused")
        var event = try next()
        while event["type"]?.stringValue != "state" { event = try next() }
        #expect(event["state"]?.stringValue == "paused")
        #expect(try control.request("{\"op\":\"cancel\",\"job\":\"walk\"}")["type"]?.stringValue == "ok")
        let cancelled = try next()
        #expect(cancelled["type"]?.stringValue == "state")
        #expect(cancelled["state"]?.stringValue == "cancelled")
        let end = try next()
        #expect(end["type"]?.stringValue == "end")
        #expect(end["state"]?.stringValue == "cancelled")
        // After `end` the subscription is over; the connection serves requests again.
        #expect(try watcher.request("{\"op\":\"hello\"}")["type"]?.stringValue == "hello")
        let again = try control.request("{\"op\":\"resume\",\"job\":\"walk\"}")
        #expect(again["code"]?.stringValue == "wrong_state")
        #expect(try control.request("{\"op\":\"delete\",\"job\":\"walk\"}")["type"]?.stringValue == "ok")
        #expect(try control.request("{\"op\":\"status\",\"job\":\"walk\"}")["code"]?.stringValue == "unknown_job")
        #expect(!FileManager.default.fileExists(atPath: daemon.jobDirectory("walk")))

        // A learning rate that overflows: the step with a non-finite loss, then diverged with a message, then end.
        let wild = "{\"data\":{\"x\":[1,2,3,4],\"y\":[2,4,6,8]},\"init\":{\"kernel\":0.5,\"bias\":0},\"optimizer\":{\"name\":\"sgd\",\"learning_rate\":1e30},\"epochs\":50,\"batch_size\":4}"
        #expect(try control.request("{\"op\":\"start\",\"job\":\"wild\",\"spec\":\(wild)}")["type"]?.stringValue == "started")
        let observer = try LineClient(path: daemon.socketPath)
        _ = try observer.request("{\"op\":\"subscribe\",\"job\":\"wild\",\"types\":[\"state\"]}")
        let states = try observer.readUntilEnd().map { try JSONParser.parse($0.dropLast()) }
        #expect(states.map { $0["type"]?.stringValue } == ["state", "state", "end"])
        #expect(states[1]["state"]?.stringValue == "diverged")
        #expect((states[1]["message"]?.stringValue ?? "").isEmpty == false)
        #expect(states[2]["state"]?.stringValue == "diverged")
        let status = try control.request("{\"op\":\"status\",\"job\":\"wild\"}")
        #expect(status["status"]?["state"]?.stringValue == "diverged")
        #expect(try daemon.stop() == 0)
    }
}
