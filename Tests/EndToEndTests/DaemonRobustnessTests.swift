import Foundation
import LTProtocol
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Bad input, vanishing clients, frozen readers and other users: the daemon answers, stays up, and nobody else
/// notices.
@Suite("ltd robustness", .serialized)
struct DaemonRobustnessTests {
    @Test("each bad input gets an error while a watcher keeps receiving")
    func badInput() throws {
        let daemon = try DaemonProcess.launch(tag: "bad", arguments: ["--max-line-bytes", "1048576"])
        defer { daemon.cleanUp() }
        let control = try LineClient(path: daemon.socketPath)
        #expect(try control.request("{\"op\":\"start\",\"job\":\"w\",\"spec\":\(JobSpecs.noisyLine(rows: 12, epochs: 150, batch: 4, paceMs: 2))}")["type"]?.stringValue == "started")
        let watcher = try LineClient(path: daemon.socketPath)
        _ = try watcher.request("{\"op\":\"subscribe\",\"job\":\"w\"}")

        let bad = try LineClient(path: daemon.socketPath)
        func expectError(_ line: [UInt8], _ code: String, field: String? = nil) throws {
            try bad.send(line + [0x0A])
            let reply = try bad.readJSON()
            #expect(reply["type"]?.stringValue == "error", "for \(String(decoding: line, as: UTF8.self))")
            #expect(reply["code"]?.stringValue == code, "for \(String(decoding: line, as: UTF8.self)): \(reply)")
            #expect((reply["message"]?.stringValue ?? "").count > 10)
            if let field { #expect(reply["field"]?.stringValue == field) }
        }
        try expectError(Array("{\"op\":\"hello\"".utf8), "bad_json")
        try expectError(Array("[1,2,3]".utf8), "bad_request")
        try expectError(Array("\"hello\"".utf8), "bad_request")
        try expectError(Array("{\"op\":\"".utf8) + [0xFF, 0xFE] + Array("\"}".utf8), "bad_json")
        try expectError(Array(("{\"op\":\"hello\",\"id\":" + String(repeating: "[", count: 200) + String(repeating: "]", count: 200) + "}").utf8), "bad_json")
        try expectError(Array("{\"op\":\"frobnicate\"}".utf8), "unknown_op")
        try expectError(Array("{\"id\":3}".utf8), "unknown_op")
        try expectError(Array("{\"op\":\"status\",\"job\":\"nope\"}".utf8), "unknown_job")
        try expectError(Array("{\"op\":\"subscribe\",\"job\":\"nope\"}".utf8), "unknown_job")
        try expectError(Array("{\"op\":\"status\"}".utf8), "bad_request")
        try expectError(Array("{\"op\":\"status\",\"job\":\"w\",\"jbo\":1}".utf8), "bad_request")
        try expectError(Array("{\"op\":\"start\",\"job\":\"../etc\",\"spec\":{}}".utf8), "invalid_job_name")
        try expectError(Array("{\"op\":\"start\",\"job\":\"x\",\"spec\":{\"data\":{\"x\":[1],\"y\":[1]},\"optimizer\":{\"name\":\"rmsprop\",\"rho\":1.5}}}".utf8), "invalid_spec", field: "optimizer.rho")
        try expectError(Array("{\"op\":\"start\",\"job\":\"x\",\"spec\":{\"data\":{\"x\":[1,2],\"y\":[1]},\"optimizer\":{\"name\":\"sgd\"}}}".utf8), "invalid_spec")
        try expectError(Array("{\"op\":\"start\",\"job\":\"w\",\"spec\":\(JobSpecs.noisyLine())}".utf8), "job_exists")
        try expectError(Array("{\"op\":\"step\",\"job\":\"w\"}".utf8), "wrong_state")
        try expectError(Array("{\"op\":\"delete\",\"job\":\"w\"}".utf8), "job_active")
        #expect(try bad.request("{\"op\":\"hello\",\"id\":\"still here\"}")["id"]?.stringValue == "still here")

        // Large lines (decoded off the loop) keep their place among pipelined requests, good or bad.
        let bulky = JobSpecs.noisyLine(rows: 30_000, epochs: 1, batch: 30_000)
        let broken = bulky.replacingOccurrences(of: "\"batch_size\":30000", with: "\"batch_size\":0")
        let pipelined = "{\"op\":\"start\",\"id\":1,\"job\":\"bulky\",\"spec\":\(broken)}\n{\"op\":\"hello\",\"id\":2}\n"
            + "{\"op\":\"start\",\"id\":3,\"job\":\"bulky\",\"spec\":\(bulky)}\n{\"op\":\"status\",\"id\":4,\"job\":\"bulky\"}\n"
        #expect(pipelined.utf8.count > 2 * 256 * 1024)
        try bad.send(pipelined)
        let first = try bad.readJSON()
        #expect(first["id"]?.intValue == 1)
        #expect(first["code"]?.stringValue == "invalid_spec")
        #expect(first["field"]?.stringValue == "batch_size")
        #expect(try bad.readJSON()["id"]?.intValue == 2)
        let started = try bad.readJSON()
        #expect(started["id"]?.intValue == 3)
        #expect(started["type"]?.stringValue == "started")
        #expect(try bad.readJSON()["status"]?["job"]?.stringValue == "bulky")

        // A terminated line over the limit: an error, then the connection closes.
        let long = try LineClient(path: daemon.socketPath)
        try long.send(String(repeating: "x", count: 1_100_000) + "\n")
        #expect(try long.readJSON()["code"]?.stringValue == "line_too_long")
        #expect(try long.readLine(timeout: .seconds(10)) == nil)

        // An unterminated flood: refused early, memory does not follow it.
        let before = daemon.residentKiB()
        let flood = try LineClient(path: daemon.socketPath)
        let block = [UInt8](repeating: UInt8(ascii: "a"), count: 1 << 20)
        for _ in 0..<200 { if (try? flood.send(block)) == nil { break } }
        #expect(daemon.residentKiB() - before < 32 * 1024)

        // Clients that vanish: mid-line, mid-subscription (never reading), right after a request.
        for _ in 0..<5 {
            let half = try LineClient(path: daemon.socketPath)
            try half.send("{\"op\":\"li")
            let reader = try LineClient(path: daemon.socketPath)
            try reader.send("{\"op\":\"subscribe\",\"job\":\"w\"}\n")
            let asker = try LineClient(path: daemon.socketPath)
            try asker.send("{\"op\":\"list\"}\n{\"op\":\"list\"}\n{\"op\":\"list\"}\n")
            _ = (half, reader, asker)
        }

        let stream = try watcher.readUntilEnd()
        for (i, line) in stream.enumerated() {
            #expect(try JSONParser.parse(line.dropLast())["seq"]?.intValue == i + 1, "watcher line \(i)")
        }
        #expect(try NDJSON.lines(ofFile: daemon.logPath(job: "w")) == stream)
        #expect(try control.request("{\"op\":\"hello\"}")["type"]?.stringValue == "hello")
        #expect(try daemon.stop() == 0)
    }

    @Test("started with stdin, stdout and stderr closed, ltd puts /dev/null there, runs a job and exits 0 on SIGTERM")
    func closedStandardDescriptors() throws {
        let directory = try Paths.temporaryDirectory("stdio")
        defer { Paths.remove(directory) }
        let socket = directory + "/ltd.sock"
        // Before the fix libuv's epoll descriptor became 0 and its close at shutdown aborted the daemon.
        let daemon = try ChildProcess([Paths.ltd, "--socket", socket, "--state-dir", directory + "/state"],
                                      stdin: .closed, stdout: .closed, stderr: .closed)
        defer { daemon.killAndReap() }
        try waitUntilAccepting(daemon, socket: socket)
        for descriptor in 0...2 {
            let target = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(daemon.pid)/fd/\(descriptor)")
            #expect(target == "/dev/null", "ltd's descriptor \(descriptor) is \(target)")
        }
        let client = try LineClient(path: socket)
        #expect(try client.request("{\"op\":\"start\",\"job\":\"j\",\"spec\":\(JobSpecs.noisyLine(rows: 12, epochs: 3, batch: 4))}")["type"]?.stringValue == "started")
        _ = try client.request("{\"op\":\"subscribe\",\"job\":\"j\"}")
        #expect(try client.readUntilEnd().count > 9)
        daemon.signal(SIGTERM)
        #expect(try daemon.waitForExit() == 0)
    }

    @Test("every ltd thread, the loop's and each job's, runs at the process's scheduling weight")
    func threadsAtOneWeight() throws {
        // A loop thread at nice +2 fell behind a classroom's watcher processes (docs/BENCHMARKS.md, "Latency under
        // a classroom's load"); nothing in ltd changes a thread's nice value now.
        let daemon = try DaemonProcess.launch(tag: "nice")
        defer { daemon.cleanUp() }
        let control = try LineClient(path: daemon.socketPath)
        for name in ["a", "b"] {
            #expect(try control.request("{\"op\":\"start\",\"job\":\"\(name)\",\"spec\":\(JobSpecs.noisyLine(rows: 12, epochs: 100, batch: 1, paused: true))}")["type"]?.stringValue == "started")
        }
        let tasks = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(daemon.pid)/task")
        #expect(tasks.count >= 3, "the loop and two job threads: \(tasks)")
        // Field 19 of /proc/PID/task/TID/stat is the nice value (the 17th after the command's closing parenthesis).
        let nice = try tasks.map { task -> String in
            let stat = try String(contentsOfFile: "/proc/\(daemon.pid)/task/\(task)/stat", encoding: .utf8)
            let fields = (stat.split(separator: ")").last ?? "").split(separator: " ")
            return fields.count > 16 ? String(fields[16]) : "?"
        }
        #expect(Set(nice).count == 1, "nice values of ltd's threads: \(nice)")
    }

    @Test("a frozen subscriber (SIGSTOP) loses nothing and daemon memory stays bounded")
    func frozenSubscriber() throws {
        let daemon = try DaemonProcess.launch(tag: "frozen")
        defer { daemon.cleanUp() }
        let control = try LineClient(path: daemon.socketPath)
        #expect(try control.request("{\"op\":\"start\",\"job\":\"f\",\"spec\":\(JobSpecs.noisyLine(rows: 12, epochs: 25_000, batch: 1, paused: true))}")["type"]?.stringValue == "started")
        let output = daemon.directory + "/frozen.ndjson"
        let script = """
        import socket, sys
        s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
        s.sendall(b'{"op":"subscribe","job":"f"}\\n')
        f = s.makefile('rb'); out = open(sys.argv[2], 'wb')
        f.readline(); print('ready', flush=True)
        for line in f:
            out.write(line)
            if line.startswith(b'{"type":"end"'): break
        out.close()
        """
        let ready = daemon.directory + "/frozen.ready"
        let reader = try ChildProcess(["python3", "-c", script, daemon.socketPath, output], stdout: .file(ready, append: false))
        try waitUntil("the reader to subscribe") { (try? String(contentsOfFile: ready, encoding: .utf8)) == "ready\n" }
        reader.signal(SIGSTOP)
        let baseline = daemon.residentKiB()
        #expect(try control.request("{\"op\":\"resume\",\"job\":\"f\"}")["type"]?.stringValue == "ok")
        var peak = baseline
        try waitUntil("the 300k-step job to finish", timeout: .seconds(300)) {
            peak = max(peak, daemon.residentKiB())
            let status = try control.request("{\"op\":\"status\",\"job\":\"f\"}")
            return status["status"]?["state"]?.stringValue == "finished"
        }
        peak = max(peak, daemon.residentKiB())
        // The bound: a frozen subscriber during a 300k-step job may not grow the daemon by more than 64 MiB.
        #expect(peak - baseline < 64 * 1024, "RSS grew from \(baseline) KiB to \(peak) KiB")
        reader.signal(SIGCONT)
        try waitUntil("the reader to catch up", timeout: .seconds(120)) { !reader.isRunning }
        let log = try NDJSON.lines(ofFile: daemon.logPath(job: "f"))
        #expect(log.count == 300_000 + 25_000 + 5)   // start, paused, running, the steps and epochs, finished, end
        #expect(try NDJSON.lines(ofFile: output) == log)
        #expect(try daemon.stop() == 0)
    }

    /// Runs socat as uid/gid 65534 (nobody), sending `lines`; returns the reply lines as JSON.
    func asNobody(_ socket: String, _ lines: [String]) throws -> [JSONValue] {
        let input = Data((lines.joined(separator: "\n") + "\n").utf8)
        let result = try Command.run(["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                      "/usr/bin/socat", "-t", "1", "-", "UNIX-CONNECT:" + socket], stdin: input)
        return try NDJSON.split([UInt8](result.stdoutBytes)).map { try JSONParser.parse($0.dropLast()) }
    }

    @Test("only the owner or root may control a job; anyone may list, status and subscribe")
    func permissions() throws {
        guard getuid() == 0 else { return }   // needs root to act as another uid
        let directory = try Paths.temporaryDirectory("perm")
        chmod(directory, 0o777)
        let daemon = try DaemonProcess.launch(directory: directory)
        defer { daemon.cleanUp() }
        chmod(daemon.socketPath, 0o666)
        let root = try LineClient(path: daemon.socketPath)
        #expect(try root.request("{\"op\":\"start\",\"job\":\"mine\",\"spec\":\(JobSpecs.noisyLine(paused: true))}")["type"]?.stringValue == "started")

        let replies = try asNobody(daemon.socketPath, [
            "{\"op\":\"hello\",\"id\":1}",
            "{\"op\":\"list\",\"id\":2,\"all\":true}",
            "{\"op\":\"status\",\"id\":3,\"job\":\"root/mine\"}",
            "{\"op\":\"pause\",\"id\":4,\"job\":\"root/mine\"}",
            "{\"op\":\"resume\",\"id\":5,\"job\":\"root/mine\"}",
            "{\"op\":\"step\",\"id\":6,\"job\":\"root/mine\"}",
            "{\"op\":\"cancel\",\"id\":7,\"job\":\"root/mine\"}",
            "{\"op\":\"delete\",\"id\":8,\"job\":\"root/mine\"}",
            "{\"op\":\"start\",\"id\":9,\"job\":\"theirs\",\"spec\":\(JobSpecs.noisyLine(paused: true))}",
            "{\"op\":\"step\",\"id\":10,\"job\":\"theirs\",\"count\":2}",
            "{\"op\":\"subscribe\",\"id\":11,\"job\":\"root/mine\"}",
        ])
        func reply(_ id: Int) -> JSONValue? { replies.first { $0["id"]?.intValue == id } }
        #expect(reply(1)?["type"]?.stringValue == "hello")
        #expect(reply(2)?["jobs"]?.arrayValue?.compactMap { $0["full_name"]?.stringValue } == ["root/mine"])
        #expect(reply(3)?["status"]?["owner"]?.intValue == 0)
        for id in 4...8 {
            #expect(reply(id)?["code"]?.stringValue == "permission_denied", "request \(id): \(String(describing: reply(id)))")
            #expect(reply(id)?["owner"]?.intValue == 0)
            #expect(reply(id)?["message"]?.stringValue?.contains("uid 0") == true)
        }
        #expect(reply(9)?["status"]?["owner"]?.intValue == 65534)
        #expect(reply(10)?["type"]?.stringValue == "ok")
        #expect(reply(11)?["type"]?.stringValue == "subscribed")
        #expect(replies.contains { $0["type"]?.stringValue == "start" && $0["job"]?.stringValue == "mine" })

        // Root may control anyone's job; the owner's job is untouched by the refusals.
        #expect(try root.request("{\"op\":\"status\",\"job\":\"mine\"}")["status"]?["state"]?.stringValue == "paused")
        #expect(try root.request("{\"op\":\"cancel\",\"job\":\"nobody/theirs\"}")["type"]?.stringValue == "ok")
        try waitUntil("theirs to be cancelled", timeout: .seconds(10)) {
            try root.request("{\"op\":\"status\",\"job\":\"65534/theirs\"}")["status"]?["state"]?.stringValue == "cancelled"
        }
        let own = try asNobody(daemon.socketPath, ["{\"op\":\"delete\",\"id\":1,\"job\":\"theirs\"}"])
        #expect(own.first?["type"]?.stringValue == "ok")
        #expect(try daemon.stop() == 0)
    }

    @Test("the job limit refuses start with too_many_jobs until a job is deleted")
    func jobLimit() throws {
        let daemon = try DaemonProcess.launch(tag: "cap", arguments: ["--max-jobs", "2"])
        defer { daemon.cleanUp() }
        let client = try LineClient(path: daemon.socketPath)
        for name in ["one", "two"] {
            #expect(try client.request("{\"op\":\"start\",\"job\":\"\(name)\",\"spec\":\(JobSpecs.noisyLine())}")["type"]?.stringValue == "started")
        }
        let refused = try client.request("{\"op\":\"start\",\"job\":\"three\",\"spec\":\(JobSpecs.noisyLine())}")
        #expect(refused["code"]?.stringValue == "too_many_jobs")
        try waitUntil("job one to finish", timeout: .seconds(20)) {
            try client.request("{\"op\":\"status\",\"job\":\"one\"}")["status"]?["state"]?.stringValue == "finished"
        }
        #expect(try client.request("{\"op\":\"delete\",\"job\":\"one\"}")["type"]?.stringValue == "ok")
        #expect(try client.request("{\"op\":\"start\",\"job\":\"three\",\"spec\":\(JobSpecs.noisyLine())}")["type"]?.stringValue == "started")
        #expect(try daemon.stop() == 0)
    }
}
