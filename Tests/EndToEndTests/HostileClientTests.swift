import Foundation
import LTProtocol
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Clients that misbehave on purpose or by accident (issue 12): closing mid-subscription, flooding requests
/// without reading, opening connections without end. The daemon holds nothing for them for long, queues only a
/// bounded amount for each, and other clients go on being served.
@Suite("ltd against hostile clients", .serialized)
struct HostileClientTests {
    static func openFDs(_ pid: pid_t) -> Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? -1
    }

    @Test("subscribers that close on a paused job release their sockets at once")
    func closedSubscribersOnAnIdleJob() throws {
        let daemon = try DaemonProcess.launch(tag: "hup")
        defer { daemon.cleanUp() }
        let control = try LineClient(path: daemon.socketPath)
        #expect(try control.request("{\"op\":\"start\",\"job\":\"idle\",\"spec\":\(JobSpecs.noisyLine(paused: true))}")["type"]?.stringValue == "started")
        let baseline = Self.openFDs(daemon.pid)
        for _ in 0..<200 {
            let watcher = try LineClient(path: daemon.socketPath)
            #expect(try watcher.request("{\"op\":\"subscribe\",\"job\":\"idle\",\"types\":[\"end\"]}")["type"]?.stringValue == "subscribed")
            // The watcher goes out of scope: its socket closes without a word.
        }
        // Noticed at the EOF, not at the next write (the paused job never writes).
        try waitUntil("the daemon to drop 200 closed subscribers", timeout: .seconds(10)) { Self.openFDs(daemon.pid) <= baseline + 2 }

        // A half-closed subscriber (EOF sent, still reading) keeps its stream; when it later closes, it is dropped too.
        let halfClosed = try LineClient(path: daemon.socketPath)
        #expect(try halfClosed.request("{\"op\":\"subscribe\",\"job\":\"idle\",\"types\":[\"state\",\"end\"]}")["type"]?.stringValue == "subscribed")
        shutdown(halfClosed.fd, Int32(SHUT_WR))
        #expect(try control.request("{\"op\":\"cancel\",\"job\":\"idle\"}")["type"]?.stringValue == "ok")
        let rest = try halfClosed.readUntilEnd()
        #expect(rest.last.map { String(decoding: $0, as: UTF8.self).hasPrefix("{\"type\":\"end\"") } == true)
        #expect(try daemon.stop() == 0)
    }

    @Test("a half-closed subscriber that then goes away is dropped while its job idles")
    func halfClosedThenGone() throws {
        let daemon = try DaemonProcess.launch(tag: "halfhup")
        defer { daemon.cleanUp() }
        let control = try LineClient(path: daemon.socketPath)
        #expect(try control.request("{\"op\":\"start\",\"job\":\"idle\",\"spec\":\(JobSpecs.noisyLine(paused: true))}")["type"]?.stringValue == "started")
        let baseline = Self.openFDs(daemon.pid)
        var watchers: [LineClient] = []
        for _ in 0..<50 {
            let watcher = try LineClient(path: daemon.socketPath)
            #expect(try watcher.request("{\"op\":\"subscribe\",\"job\":\"idle\",\"types\":[\"end\"]}")["type"]?.stringValue == "subscribed")
            shutdown(watcher.fd, Int32(SHUT_WR))
            watchers.append(watcher)
        }
        usleep(300_000)
        #expect(Self.openFDs(daemon.pid) >= baseline + 45, "half-closed subscribers keep their streams")
        watchers = []
        try waitUntil("the daemon to drop 50 vanished subscribers", timeout: .seconds(10)) { Self.openFDs(daemon.pid) <= baseline + 2 }
        #expect(try daemon.stop() == 0)
    }

    @Test("a client that floods requests and reads nothing costs a bounded amount, and loses no reply")
    func requestFloodWithoutReading() throws {
        let daemon = try DaemonProcess.launch(tag: "flood")
        defer { daemon.cleanUp() }
        let control = try LineClient(path: daemon.socketPath)
        for i in 0..<40 {
            #expect(try control.request("{\"op\":\"start\",\"job\":\"j\(i)\",\"spec\":\(JobSpecs.noisyLine(paused: true))}")["type"]?.stringValue == "started")
        }
        try control.send("{\"op\":\"list\"}\n")
        let listBytes = try control.readLine()?.count ?? 0
        let baseline = daemon.residentKiB()
        let flooder = try LineClient(path: daemon.socketPath)
        let count = 6_000
        // 6,000 lists of 40 jobs: over 100 MB of replies, asked for in 90 KB.
        try flooder.send(String(repeating: "{\"op\":\"list\"}\n", count: count))
        usleep(1_500_000)
        // Held back: ltd stops reading this connection, so part of the flood is still in the socket, unread.
        var unread: Int32 = 0
        #expect(ioctl(flooder.fd, UInt(TIOCOUTQ), &unread) == 0)
        #expect(unread > 0, "ltd read every request although their replies were not being read")
        let grown = daemon.residentKiB() - baseline
        #expect(grown < 24 * 1024, "RSS grew by \(grown) KiB for one client's unread replies (\(listBytes) bytes each)")
        // Everyone else is served meanwhile.
        #expect(try control.request("{\"op\":\"hello\"}", timeout: .seconds(5))["type"]?.stringValue == "hello")
        // Nothing is lost: every request is answered once the client reads.
        var replies = 0
        while replies < count, let line = try flooder.readLine() {
            #expect(line.starts(with: Array("{\"type\":\"jobs\"".utf8)))
            replies += 1
        }
        #expect(replies == count)
        #expect(try daemon.stop() == 0)
    }

    @Test("connections beyond the per-user limit get too_many_connections, and the log says so once")
    func connectionLimit() throws {
        let daemon = try DaemonProcess.launch(tag: "conncap", arguments: ["--max-connections-per-user", "4", "--log-level", "info"])
        defer { daemon.cleanUp() }
        var open: [LineClient] = []
        for _ in 0..<4 {
            let client = try LineClient(path: daemon.socketPath)
            #expect(try client.request("{\"op\":\"hello\"}")["type"]?.stringValue == "hello")
            open.append(client)
        }
        for _ in 0..<5 {
            let refused = try LineClient(path: daemon.socketPath)
            let reply = try refused.readJSON()
            #expect(reply["code"]?.stringValue == "too_many_connections")
            #expect(reply["message"]?.stringValue?.contains("--max-connections-per-user 4") == true)
            #expect(try refused.readLine() == nil)
        }
        open.removeLast()
        try waitUntil("a slot to free up") {
            guard let client = try? LineClient(path: daemon.socketPath),
                  let reply = try? client.request("{\"op\":\"hello\"}") else { return false }
            return reply["type"]?.stringValue == "hello"
        }
        #expect(try daemon.stop() == 0)
        let log = daemon.stderr
        #expect(log.components(separatedBy: "connection limit for uid").count - 1 == 1, "\(log)")
        #expect(log.contains("below its connection limit again ("), "\(log)")
    }

    @Test("unfinished request lines are capped in all: the connection that would pass the cap gets busy")
    func pendingLineLimit() throws {
        let daemon = try DaemonProcess.launch(tag: "linecap", arguments: ["--max-line-bytes", "1048576", "--max-pending-line-bytes", "2097152"])
        defer { daemon.cleanUp() }
        let chunk = "{\"op\":\"hello\",\"id\":\"" + String(repeating: "a", count: 900_000)
        let first = try LineClient(path: daemon.socketPath), second = try LineClient(path: daemon.socketPath)
        try first.send(chunk)
        try second.send(chunk)
        usleep(300_000)
        let third = try LineClient(path: daemon.socketPath)
        try third.send(chunk)
        let reply = try third.readJSON()
        #expect(reply["code"]?.stringValue == "busy")
        // The others finish their lines and are answered; then there is room again.
        try first.send("\"}\n")
        #expect(try first.readJSON()["type"]?.stringValue == "hello")
        let fourth = try LineClient(path: daemon.socketPath)
        try fourth.send(chunk + "\"}\n")
        #expect(try fourth.readJSON()["type"]?.stringValue == "hello")
        #expect(try daemon.stop() == 0)
        #expect(daemon.stderr.components(separatedBy: "unfinished request lines reached the limit").count - 1 == 1)
    }

    @Test("SIGHUP stops ltd as SIGTERM does: checkpointed, and the job resumes after a restart")
    func hangUpIsAStop() throws {
        let daemon = try DaemonProcess.launch(tag: "sighup")
        defer { daemon.cleanUp() }
        let control = try LineClient(path: daemon.socketPath)
        #expect(try control.request("{\"op\":\"start\",\"job\":\"h\",\"spec\":\(JobSpecs.noisyLine(epochs: 2_000, paceMs: 2))}")["type"]?.stringValue == "started")
        usleep(300_000)
        daemon.signal(SIGHUP)
        #expect(try daemon.waitForExit() == 0)
        #expect(daemon.stderr.contains("SIGHUP: shutting down"))
        #expect(FileManager.default.fileExists(atPath: daemon.checkpointPath(job: "h")))
        try daemon.start()
        let again = try LineClient(path: daemon.socketPath)
        let status = try again.request("{\"op\":\"status\",\"job\":\"h\"}")
        #expect(status["status"]?["state"]?.stringValue == "running")
        #expect((status["status"]?["iteration"]?.intValue ?? 0) > 0)
        #expect(try daemon.stop() == 0)
    }

    @Test("a crafted or newer checkpoint is refused with a reason; the daemon starts and serves the other jobs")
    func untrustedCheckpoint() throws {
        let daemon = try DaemonProcess.launch(tag: "crafted")
        defer { daemon.cleanUp() }
        let control = try LineClient(path: daemon.socketPath)
        for job in ["a", "b", "c"] {
            #expect(try control.request("{\"op\":\"start\",\"job\":\"\(job)\",\"spec\":\(JobSpecs.noisyLine())}")["type"]?.stringValue == "started")
            try waitUntil("job \(job) to finish") {
                try control.request("{\"op\":\"status\",\"job\":\"\(job)\"}")["status"]?["state"]?.stringValue == "finished"
            }
        }
        #expect(try daemon.stop() == 0)
        func rewrite(_ job: String, _ change: (String) -> String) throws {
            let path = daemon.checkpointPath(job: job)
            try change(try String(contentsOfFile: path, encoding: .utf8)).write(toFile: path, atomically: true, encoding: .utf8)
        }
        // seq = Int64.max once trapped the daemon on every start.
        try rewrite("a") { $0.replacing(#/"seq":[0-9]+/#, with: "\"seq\":9223372036854775807") }
        try rewrite("b") { $0.replacing(#/"version":[0-9]+/#, with: "\"version\":99") }
        try daemon.start()
        let again = try LineClient(path: daemon.socketPath)
        #expect(try again.request("{\"op\":\"status\",\"job\":\"c\"}")["status"]?["state"]?.stringValue == "finished")
        #expect(daemon.stderr.contains("claims 9223372036854775807 events"), "\(daemon.stderr)")
        #expect(daemon.stderr.contains("format version 99, newer than this ltd reads"), "\(daemon.stderr)")
        #expect(try daemon.stop() == 0)
    }

    @Test("state files are never opened through a symbolic link")
    func symlinkedLogIsNotFollowed() throws {
        let daemon = try DaemonProcess.launch(tag: "symlink")
        defer { daemon.cleanUp() }
        let control = try LineClient(path: daemon.socketPath)
        #expect(try control.request("{\"op\":\"start\",\"job\":\"s\",\"spec\":\(JobSpecs.noisyLine(paused: true))}")["type"]?.stringValue == "started")
        #expect(try daemon.stop() == 0)
        // Someone with write access to the state directory swaps the log for a link to a file of theirs.
        let target = daemon.directory + "/elsewhere"
        let log = daemon.logPath(job: "s")
        try FileManager.default.moveItem(atPath: log, toPath: target)
        try FileManager.default.createSymbolicLink(atPath: log, withDestinationPath: target)
        let before = try Data(contentsOf: URL(fileURLWithPath: target))
        try daemon.start()
        let again = try LineClient(path: daemon.socketPath)
        _ = try? again.request("{\"op\":\"resume\",\"job\":\"s\"}")
        usleep(500_000)
        #expect(try Data(contentsOf: URL(fileURLWithPath: target)) == before, "ltd wrote through the link")
        #expect(try daemon.stop() == 0)
    }

    @Test("disk and jobs per user are bounded: start refuses what cannot fit, with the numbers; a job that outgrows its log fails")
    func diskAndJobLimits() throws {
        let daemon = try DaemonProcess.launch(tag: "disklimits", arguments: ["--max-log-bytes", "1048576", "--max-state-bytes", "3145728", "--max-jobs-per-user", "3"])
        defer { daemon.cleanUp() }
        let control = try LineClient(path: daemon.socketPath)
        // 12 × 100,000 steps cannot fit in 1 MiB at 200 bytes a step.
        let huge = try control.request("{\"op\":\"start\",\"job\":\"huge\",\"spec\":\(JobSpecs.noisyLine(rows: 12, epochs: 100_000, batch: 1))}")
        #expect(huge["code"]?.stringValue == "invalid_spec")
        #expect(huge["field"]?.stringValue == "epochs")
        #expect(huge["message"]?.stringValue?.contains("1200000 steps") == true && huge["message"]?.stringValue?.contains("--max-log-bytes") == true, "\(huge)")
        // 4,000 steps pass the estimate but their events take more than 1 MiB: the job fails when its log is full.
        #expect(try control.request("{\"op\":\"start\",\"job\":\"grows\",\"spec\":\(JobSpecs.noisyLine(rows: 4, epochs: 1_000, batch: 1))}")["type"]?.stringValue == "started")
        try waitUntil("the job to stop at its log limit", timeout: .seconds(60)) {
            try control.request("{\"op\":\"status\",\"job\":\"grows\"}")["status"]?["state"]?.stringValue == "failed"
        }
        let status = try control.request("{\"op\":\"status\",\"job\":\"grows\"}")["status"]
        #expect(status?["message"]?.stringValue?.contains("limit of 1048576 bytes per job") == true, "\(String(describing: status))")
        let logBytes = (try FileManager.default.attributesOfItem(atPath: daemon.logPath(job: "grows"))[.size] as? Int) ?? 0
        #expect(logBytes <= 1_048_576 + 4096)
        // Jobs per user.
        for job in ["a", "b"] {
            #expect(try control.request("{\"op\":\"start\",\"job\":\"\(job)\",\"spec\":\(JobSpecs.noisyLine(paused: true))}")["type"]?.stringValue == "started")
        }
        let fourth = try control.request("{\"op\":\"start\",\"job\":\"d\",\"spec\":\(JobSpecs.noisyLine(paused: true))}")
        #expect(fourth["code"]?.stringValue == "too_many_jobs")
        #expect(fourth["message"]?.stringValue?.contains("--max-jobs-per-user 3") == true)
        #expect(try daemon.stop() == 0)
    }

    @Test("the /tmp fallback socket directory is used only if it is the caller's own, mode 0700")
    func sharedTmpSocketDirectoryIsRefused() throws {
        guard getuid() == 0 else { return }   // plays uid 65534 (nobody), whose fallback is /tmp/ltd-65534
        let fallback = "/tmp/ltd-65534"
        guard !FileManager.default.fileExists(atPath: fallback) else { return }   // someone's real one: leave it
        let directory = try Paths.temporaryDirectory("tmpdir")
        defer { Paths.remove(directory); Paths.remove(fallback) }
        chown(directory, 65534, 65534)
        // Made by root, mode 0755: not nobody's own.
        #expect(mkdir(fallback, 0o755) == 0)
        let result = try Command.run(["/usr/bin/env", "-u", "XDG_RUNTIME_DIR", "-u", "LTD_SOCKET", "/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                      Paths.ltd, "--state-dir", directory + "/state"])
        #expect(result.status == 1)
        #expect(result.stderr.contains("/tmp/ltd-65534 is in the world-writable /tmp but is not a directory of uid 65534"), "\(result.stderr)")
    }
}
