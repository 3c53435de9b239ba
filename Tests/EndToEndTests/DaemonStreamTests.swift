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
        let started = try control.request("{\"op\":\"start\",\"id\":1,\"job\":\"j1\",\"spec\":\(Harness.spec(rows: 12, epochs: 2000, batch: 1, paused: true))}")
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
        #expect(try Harness.lines(ofFile: daemon.logPath(job: "j1")) == streams[0])

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
        let spec = Harness.spec(rows: 12, epochs: 4000, batch: 1)
        let control = try LineClient(path: daemon.socketPath)
        #expect(try control.request("{\"op\":\"start\",\"job\":\"a\",\"spec\":\(spec)}")["type"]?.stringValue == "started")
        #expect(try control.request("{\"op\":\"start\",\"job\":\"p\",\"spec\":\(Harness.spec(rows: 12, epochs: 4000, batch: 1, paused: true))}")["type"]?.stringValue == "started")
        #expect(try control.request("{\"op\":\"step\",\"job\":\"p\",\"count\":7}")["type"]?.stringValue == "ok")
        // Let "a" get somewhere, but not to the end.
        try Harness.wait(.seconds(30), "job a to pass 2000 events") {
            let status = try control.request("{\"op\":\"status\",\"job\":\"a\"}")
            return (status["status"]?["seq"]?.intValue ?? 0) > 2000
        }
        try Harness.wait(.seconds(30), "job p to take its 7 steps") {
            try control.request("{\"op\":\"status\",\"job\":\"p\"}")["status"]?["iteration"]?.intValue == 7
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
        #expect(try Harness.lines(ofFile: daemon.logPath(job: "a")) == resumed)
        #expect(try daemon.stop() == 0)
    }

    @Test("SIGTERM: subscribers get everything written, checkpoints stay, exit 0, the job resumes")
    func gracefulShutdown() throws {
        let daemon = try DaemonProcess.launch(tag: "term")
        defer { daemon.cleanUp() }
        let control = try LineClient(path: daemon.socketPath)
        let spec = Harness.spec(rows: 12, epochs: 100_000, batch: 1, paceMs: 1)
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
        let log = try Harness.lines(ofFile: daemon.logPath(job: "long"))
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
}
