import Foundation
import LTProtocol
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Clients that misbehave on purpose or by accident (issue 12): closing mid-subscription, flooding requests
/// without reading, opening connections without end, sending lines without end. The daemon holds nothing for them
/// for long, queues only a bounded amount for each, and other clients go on being served.
@Suite("ltd against hostile clients", .serialized)
struct HostileClientTests {
    static func openFDs(_ pid: pid_t) -> Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? -1
    }

    static func startPaused(_ job: String, on control: LineClient) throws {
        let reply = try control.request("{\"op\":\"start\",\"job\":\"\(job)\",\"spec\":\(JobSpecs.noisyLine(paused: true))}")
        #expect(reply["type"]?.stringValue == "started", "\(reply)")
    }

    /// Sends `text` from another thread (a client that writes without reading would block on its own socket
    /// once ltd holds its requests back); wait on the group before the client goes.
    static func sendInBackground(_ text: String, on client: LineClient) -> DispatchGroup {
        let group = DispatchGroup()
        let fd = client.fd, bytes = Array(text.utf8)
        DispatchQueue.global().async(group: group) {
            var sent = 0
            while sent < bytes.count {
                let n = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                guard n > 0 else { return }
                sent += n
            }
        }
        return group
    }

    @Test("300 subscribers that close on a paused job release their sockets at once; a half-close keeps its stream")
    func closedSubscribersOnAnIdleJob() throws {
        let daemon = try DaemonProcess.launch(tag: "hup", arguments: ["--max-connections-per-user", "400"])
        defer { daemon.cleanUp() }
        let control = try LineClient(path: daemon.socketPath)
        try Self.startPaused("idle", on: control)
        let baseline = Self.openFDs(daemon.pid)
        var watchers: [LineClient] = []
        for _ in 0..<300 {
            let watcher = try LineClient(path: daemon.socketPath)
            #expect(try watcher.request("{\"op\":\"subscribe\",\"job\":\"idle\",\"types\":[\"end\"]}")["type"]?.stringValue == "subscribed")
            watchers.append(watcher)
        }
        #expect(Self.openFDs(daemon.pid) >= baseline + 290, "the subscribers are open")
        // All close without a word. The paused job never writes, so only their EOF can tell.
        watchers = []
        try waitUntil("the daemon to drop 300 closed subscribers", timeout: .seconds(5)) { Self.openFDs(daemon.pid) <= baseline + 2 }

        // A half-closed subscriber (EOF sent, still reading) keeps its stream to the end.
        let halfClosed = try LineClient(path: daemon.socketPath)
        #expect(try halfClosed.request("{\"op\":\"subscribe\",\"job\":\"idle\",\"types\":[\"state\",\"end\"]}")["type"]?.stringValue == "subscribed")
        shutdown(halfClosed.fd, Int32(SHUT_WR))
        usleep(200_000)
        #expect(try control.request("{\"op\":\"cancel\",\"job\":\"idle\"}")["type"]?.stringValue == "ok")
        let rest = try halfClosed.readUntilEnd()
        #expect(rest.last.map { String(decoding: $0, as: UTF8.self).hasPrefix("{\"type\":\"end\"") } == true)
        #expect(try daemon.stop() == 0)
    }

    @Test("half-closed subscribers that then go away are dropped while their job idles")
    func halfClosedThenGone() throws {
        let daemon = try DaemonProcess.launch(tag: "halfhup")
        defer { daemon.cleanUp() }
        let control = try LineClient(path: daemon.socketPath)
        try Self.startPaused("idle", on: control)
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
        try waitUntil("the daemon to drop 50 vanished subscribers", timeout: .seconds(5)) { Self.openFDs(daemon.pid) <= baseline + 2 }
        #expect(try daemon.stop() == 0)
    }

    @Test("20,000 list requests that are never read cost a bounded amount; the replies resume in order once read")
    func requestFloodWithoutReading() throws {
        let daemon = try DaemonProcess.launch(tag: "flood", arguments: ["--max-running-per-user", "60"])
        defer { daemon.cleanUp() }
        let control = try LineClient(path: daemon.socketPath)
        for i in 0..<60 { try Self.startPaused("j\(i)", on: control) }
        try control.send("{\"op\":\"list\"}\n")
        let listBytes = try control.readLine()?.count ?? 0
        let baseline = daemon.residentKiB()
        let flooder = try LineClient(path: daemon.socketPath)
        // As much of 20,000 requests (over 300 MB of replies) as the socket takes in 2 s, without blocking.
        let flood = Array((0..<20_000).map { "{\"op\":\"list\",\"id\":\($0)}\n" }.joined().utf8)
        _ = fcntl(flooder.fd, F_SETFL, fcntl(flooder.fd, F_GETFL) | O_NONBLOCK)
        var sent = 0
        let deadline = ContinuousClock.now + .seconds(2)
        while sent < flood.count, ContinuousClock.now < deadline {
            let n = flood[sent...].withUnsafeBytes { Glibc.send(flooder.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n > 0 { sent += n } else { usleep(10_000) }
        }
        _ = fcntl(flooder.fd, F_SETFL, fcntl(flooder.fd, F_GETFL) & ~O_NONBLOCK)
        usleep(500_000)
        let grown = daemon.residentKiB() - baseline
        #expect(grown < 16 * 1024, "RSS grew by \(grown) KiB for one client's unread replies (\(listBytes) bytes each)")
        // Held back: part of what was sent is still unread, in the socket.
        var unread: Int32 = 0
        #expect(ioctl(flooder.fd, UInt(TIOCOUTQ), &unread) == 0)
        #expect(unread > 0, "ltd read every request although their replies were not being read")
        // Everyone else is served meanwhile.
        #expect(try control.request("{\"op\":\"hello\"}", timeout: .seconds(5))["type"]?.stringValue == "hello")
        // Reading resumes the requests, in order, none skipped.
        for expected in 0..<1_000 {
            let reply = try flooder.readJSON()
            #expect(reply["type"]?.stringValue == "jobs")
            guard reply["id"]?.intValue == expected else {
                Issue.record("reply \(expected) has id \(String(describing: reply["id"]))")
                break
            }
        }
        #expect(try daemon.stop() == 0)
    }

    @Test("requests pipelined without reading are all answered, in order, once the client reads")
    func floodLosesNoReply() throws {
        let daemon = try DaemonProcess.launch(tag: "floodall")
        defer { daemon.cleanUp() }
        let control = try LineClient(path: daemon.socketPath)
        for i in 0..<3 { try Self.startPaused("j\(i)", on: control) }
        let flooder = try LineClient(path: daemon.socketPath)
        let count = 20_000
        let writer = Self.sendInBackground((0..<count).map { "{\"op\":\"list\",\"id\":\($0)}\n" }.joined(), on: flooder)
        usleep(1_000_000)
        var replies = 0
        while replies < count {
            let reply = try flooder.readJSON()
            guard reply["type"]?.stringValue == "jobs", reply["id"]?.intValue == replies else {
                Issue.record("reply \(replies): \(reply)")
                break
            }
            replies += 1
        }
        writer.wait()
        #expect(replies == count)
        #expect(try daemon.stop() == 0)
    }

    @Test("a reply over half of --max-queued-bytes gets busy and closes; replies up to it are held, not lost")
    func queuedOutputLimit() throws {
        let daemon = try DaemonProcess.launch(tag: "queuecap")
        defer { daemon.cleanUp() }
        // Replies echo their request's id: a 1.5 MB id makes a 1.5 MB reply.
        func hello(id: Int, padding: Int) -> String {
            "{\"op\":\"hello\",\"id\":[\(id),\"" + String(repeating: "x", count: padding) + "\"]}\n"
        }
        let reader = try LineClient(path: daemon.socketPath)
        let writer = Self.sendInBackground((0..<3).map { hello(id: $0, padding: 1_500_000) }.joined(), on: reader)
        usleep(1_500_000)
        // The third request waits unread: the first two replies passed half of the limit.
        var unread: Int32 = 0
        #expect(ioctl(reader.fd, UInt(TIOCOUTQ), &unread) == 0)
        #expect(unread > 0, "ltd read on although 3 MB of replies were unread")
        for expected in 0..<3 {
            let reply = try reader.readJSON()
            #expect(reply["type"]?.stringValue == "hello")
            #expect(reply["id"]?.arrayValue?.first?.intValue == expected)
        }
        writer.wait()
        // 2.5 MB at once: more than half of the 4 MiB default.
        let greedy = try LineClient(path: daemon.socketPath)
        try greedy.send(hello(id: 0, padding: 2_500_000))
        let refusal = try greedy.readJSON()
        #expect(refusal["code"]?.stringValue == "busy", "\(refusal)")
        #expect(refusal["message"]?.stringValue?.contains("--max-queued-bytes") == true)
        #expect(try greedy.readLine() == nil, "the connection closes after the error")
        #expect(try reader.request("{\"op\":\"hello\"}")["type"]?.stringValue == "hello")
        #expect(try daemon.stop() == 0)
    }

    @Test("connections beyond the limits get too_many_connections, and the log says so once per crossing")
    func connectionLimits() throws {
        let daemon = try DaemonProcess.launch(tag: "conncap", arguments: ["--max-connections", "6", "--max-connections-per-user", "4"])
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
            #expect(reply["message"]?.stringValue?.contains("--max-connections-per-user 4") == true, "\(reply)")
            #expect(try refused.readLine() == nil)
        }
        open.removeLast()
        try waitUntil("a slot to free up") {
            // A refused connection reads its error where the reply would be.
            guard let client = try? LineClient(path: daemon.socketPath),
                  let reply = try? client.request("{\"op\":\"hello\"}") else { return false }
            return reply["type"]?.stringValue == "hello"
        }
        let log = daemon.stderr
        #expect(log.components(separatedBy: "connection limit of uid").count - 1 == 1, "\(log)")
        #expect(log.contains("uid \(getuid()) below its connection limit again ("), "\(log)")
        #expect(try daemon.stop() == 0)

        // The limit in all (here every client is one uid, so it is reached with the per-user limit at its own).
        try daemon.start(arguments: ["--max-connections", "3", "--max-connections-per-user", "3"])
        var all: [LineClient] = []
        for _ in 0..<3 {
            let client = try LineClient(path: daemon.socketPath)
            #expect(try client.request("{\"op\":\"hello\"}")["type"]?.stringValue == "hello")
            all.append(client)
        }
        for _ in 0..<3 {
            let refused = try LineClient(path: daemon.socketPath)
            #expect(try refused.readJSON()["message"]?.stringValue?.contains("--max-connections)") == true)
        }
        #expect(daemon.stderr.components(separatedBy: "connection limit reached (3 open").count - 1 == 1, "\(daemon.stderr)")
        all = []
        #expect(try daemon.stop() == 0)
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
        for _ in 0..<3 {
            let third = try LineClient(path: daemon.socketPath)
            try third.send(chunk)
            let reply = try third.readJSON()
            #expect(reply["code"]?.stringValue == "busy", "\(reply)")
            #expect(reply["message"]?.stringValue?.contains("unfinished request lines") == true)
        }
        // The others finish their lines and are answered; then there is room again.
        try first.send("\"}\n")
        #expect(try first.readJSON()["type"]?.stringValue == "hello")
        try second.send("\"}\n")
        #expect(try second.readJSON()["type"]?.stringValue == "hello")
        let fourth = try LineClient(path: daemon.socketPath)
        try fourth.send(chunk + "\"}\n")
        #expect(try fourth.readJSON()["type"]?.stringValue == "hello")
        #expect(try daemon.stop() == 0)
        #expect(daemon.stderr.components(separatedBy: "unfinished request lines reached the limit").count - 1 == 1, "\(daemon.stderr)")
        #expect(daemon.stderr.contains("well below their limit again (3 connection(s) refused meanwhile)"), "\(daemon.stderr)")
    }

    @Test("ltctl refuses a daemon that runs as another user, with a clear error; root and the caller are trusted")
    func clientChecksTheDaemonsUID() throws {
        guard getuid() == 0 else { return }   // needs root to run ltd as another user
        // A real ltd, as uid 65534 (nobody): root can connect to its 0600 socket, but must not trust it.
        let stranger = try NobodyDaemon.launch(tag: "peeruid")
        defer { stranger.cleanUp() }
        let socket = stranger.socketPath
        let refused = try Command.run([Paths.ltctl, "hello"], environment: ["LTD_SOCKET": socket, "PATH": "/usr/bin:/bin"])
        #expect(refused.status == 69, "\(refused.stdout) \(refused.stderr)")
        #expect(refused.stderr.contains("runs as nobody (uid 65534), not as you (uid 0), root or the ltd service user"), "\(refused.stderr)")
        // The same daemon is trusted by its own user.
        let own = try Command.run(asNobody + [Paths.ltctl, "hello"],
                                  environment: ["LTD_SOCKET": socket, "PATH": "/usr/bin:/bin"])
        #expect(own.status == 0, "\(own.stderr)")
        #expect(try stranger.stop() == 0)
    }

    @Test("the /tmp fallback socket directory is used only if it is the caller's own, mode 0700")
    func sharedTmpSocketDirectoryIsRefused() throws {
        guard getuid() == 0 else { return }   // plays uid 65534 (nobody), whose fallback is /tmp/ltd-65534
        let fallback = DefaultPaths.temporarySocketDirectory(uid: 65534)
        guard !FileManager.default.fileExists(atPath: fallback) else { return }   // someone's real one: leave it
        let directory = try Paths.temporaryDirectory("tmpdir")
        defer { Paths.remove(directory); Paths.remove(fallback) }
        chown(directory, 65534, 65534)
        // Made by root, mode 0755: not nobody's own.
        #expect(mkdir(fallback, 0o755) == 0)
        let nobody = ["/usr/bin/env", "-u", "XDG_RUNTIME_DIR", "-u", "LTD_SOCKET"] + asNobody + [Paths.ltd, "--state-dir", directory + "/state"]
        let refused = try Command.run(nobody)
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("/tmp/ltd-65534 is in the world-writable /tmp but is not a directory of uid 65534 with mode 0700"), "\(refused.stderr)")
        // Its own, mode 0700: used.
        chown(fallback, 65534, 65534)
        chmod(fallback, 0o700)
        let daemon = try ChildProcess(nobody)
        try waitUntil("the fallback socket", timeout: .seconds(20)) { FileManager.default.fileExists(atPath: fallback + "/ltd.sock") }
        daemon.signal(SIGTERM)
        #expect(try daemon.waitForExit(timeout: .seconds(20)) == 0)
    }
}
