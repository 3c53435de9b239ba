import Foundation
import LTProtocol
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The `stats` op and `ltctl top` against a real daemon: the figures are the ones the test set up (connections,
/// subscribers, an unfinished line, a client that does not read, descriptors, memory, jobs), each limit is reported
/// with its flag's value, and other users' rows are shown to root and the admin group only.
@Suite("stats and ltctl top", .serialized)
struct StatsTests {
    static func limit(_ stats: JSONValue, _ name: String) -> (limit: Int?, used: Int?) {
        let entry = stats["limits"]?.arrayValue?.first { $0["name"]?.stringValue == name }
        return (entry?["limit"]?.intValue, entry?["used"]?.intValue)
    }

    /// Entries of /proc/PID/fd: what the daemon should report as its open descriptors.
    static func descriptors(of pid: pid_t) -> Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? -1
    }

    @Test("stats reports the connections, subscribers, unfinished line, unread output, fds, RSS and jobs there are")
    func truthful() throws {
        let daemon = try DaemonProcess.launch(tag: "stats", arguments: ["--max-queued-bytes", "65536", "--max-running-per-user", "3"])
        defer { daemon.cleanUp() }
        let control = try LineClient(path: daemon.socketPath)
        let first = try control.request("{\"op\":\"stats\"}")
        #expect(first["type"]?.stringValue == "stats", "\(first)")
        #expect(first["connections"]?["open"]?.intValue == 1)
        #expect(first["pid"]?.intValue == Int(daemon.pid))
        #expect(Self.limit(first, "max-running-per-user") == (3, 0))
        #expect(Self.limit(first, "max-queued-bytes") == (65536, 0))

        // A paused job with two subscribers, a long finished job whose subscriber never reads, four idle
        // connections and one with half a request line.
        #expect(try control.request("{\"op\":\"start\",\"job\":\"paused\",\"spec\":\(JobSpecs.noisyLine(paused: true))}")["type"]?.stringValue == "started")
        #expect(try control.request("{\"op\":\"start\",\"job\":\"long\",\"spec\":\(JobSpecs.noisyLine(rows: 12, epochs: 200, batch: 1))}")["type"]?.stringValue == "started")
        try waitUntil("long to finish", timeout: .seconds(60)) {
            try control.request("{\"op\":\"status\",\"job\":\"long\"}")["status"]?["state"]?.stringValue == "finished"
        }
        var subscribers: [LineClient] = []
        for _ in 0..<2 {
            let subscriber = try LineClient(path: daemon.socketPath)
            #expect(try subscriber.request("{\"op\":\"subscribe\",\"job\":\"paused\"}")["type"]?.stringValue == "subscribed")
            subscribers.append(subscriber)
        }
        let sleeper = try LineClient(path: daemon.socketPath)
        try sleeper.send("{\"op\":\"subscribe\",\"job\":\"long\"}\n")
        var idle = try (0..<4).map { _ in try LineClient(path: daemon.socketPath) }
        let halfLine = try LineClient(path: daemon.socketPath)
        try halfLine.send("{\"op\":")

        var stats = JSONValue.null
        try waitUntil("the sleeper's output to queue up and the half line to arrive", timeout: .seconds(30)) {
            stats = try control.request("{\"op\":\"stats\"}")
            return (stats["queued_bytes"]?["max_one_connection"]?.intValue ?? 0) > 0 && stats["pending_line_bytes"]?.intValue == 6
        }
        let connections = stats["connections"]
        #expect(connections?["open"]?.intValue == 1 + subscribers.count + 1 + idle.count + 1, "\(stats)")
        #expect(connections?["subscribers"]?.intValue == 3, "\(stats)")
        #expect(connections?["users"]?.intValue == 1)
        let mostQueued = stats["queued_bytes"]?["max_one_connection"]?.intValue ?? 0
        // The sleeper's pull from the log stops at a quarter of --max-queued-bytes (plus the events of one read).
        #expect(mostQueued <= 65536, "\(stats)")
        #expect(stats["queued_bytes"]?["total"]?.intValue ?? 0 >= mostQueued)
        #expect(Self.limit(stats, "max-queued-bytes").used == mostQueued)
        #expect(Self.limit(stats, "max-pending-line-bytes").used == 6)
        #expect(Self.limit(stats, "max-connections").used == connections?["open"]?.intValue)
        #expect(Self.limit(stats, "max-running-per-user").used == 1, "the paused job")
        #expect(Self.limit(stats, "max-jobs").used == 2)
        #expect(stats["jobs"]?["total"]?.intValue == 2 && stats["jobs"]?["paused"]?.intValue == 1
                && stats["jobs"]?["finished"]?.intValue == 1, "\(stats)")
        let stateBytes = stats["state_bytes"]?.intValue ?? 0
        #expect(stateBytes > 500_000 && Self.limit(stats, "max-state-bytes").used == stateBytes, "\(stats)")
        #expect(stats["users"]?.arrayValue?.first?["uid"]?.intValue == Int(getuid()))
        #expect(stats["users"]?.arrayValue?.first?["bytes"]?.intValue == stateBytes)
        #expect(stats["users_scope"]?.stringValue == "all", "root sees every user")
        // Descriptors and memory, as /proc shows them to the test (nothing else opens files meanwhile).
        try waitUntil("the fd count to match /proc", timeout: .seconds(10)) {
            try control.request("{\"op\":\"stats\"}")["open_fds"]?.intValue == Self.descriptors(of: daemon.pid)
        }
        let rss = try control.request("{\"op\":\"stats\"}")["rss_bytes"]?.intValue ?? 0
        let rssByTest = daemon.residentKiB() * 1024
        #expect(rss > 0 && abs(rss - rssByTest) < rssByTest / 5, "stats \(rss) vs /proc \(rssByTest)")
        #expect(stats["loop_lag_us"]?["interval"]?.intValue == 1_000_000)
        #expect(stats["restore"]?["running"]?.boolValue == false)

        // Gone clients are gone from the figures.
        idle.removeAll()
        try waitUntil("the idle connections to be counted out", timeout: .seconds(10)) {
            try control.request("{\"op\":\"stats\"}")["connections"]?["open"]?.intValue == 1 + 2 + 1 + 1
        }
        #expect(try daemon.stop() == 0)
    }

    @Test("systemd's STATUS= line counts as stats does: running (an external job being published too), paused, connections, subscribers")
    func statusLineAgreesWithStats() throws {
        let notifyDirectory = try Paths.temporaryDirectory("census-notify")
        defer { Paths.remove(notifyDirectory) }
        let notify = try NotifySocket(name: notifyDirectory + "/notify")
        let daemon = try DaemonProcess.launch(tag: "census", environment: ["NOTIFY_SOCKET": notify.name])
        defer { daemon.cleanUp() }
        let control = try LineClient(path: daemon.socketPath)
        #expect(try control.request("{\"op\":\"start\",\"job\":\"held\",\"spec\":\(JobSpecs.noisyLine(paused: true))}")["type"]?.stringValue == "started")
        // An external job has no thread of ltd's: it runs while its publisher feeds it.
        let publisher = try LineClient(path: daemon.socketPath)
        #expect(try publisher.request("{\"op\":\"create\",\"job\":\"fed\",\"spec\":\(JobSpecs.noisyLine())}")["type"]?.stringValue == "started")
        let follower = try LineClient(path: daemon.socketPath)
        #expect(try follower.request("{\"op\":\"subscribe\",\"job\":\"held\"}")["type"]?.stringValue == "subscribed")

        let stats = try control.request("{\"op\":\"stats\"}")
        #expect(stats["jobs"]?["running"]?.intValue == 1 && stats["jobs"]?["paused"]?.intValue == 1, "\(stats)")
        #expect(stats["connections"]?["open"]?.intValue == 3 && stats["connections"]?["subscribers"]?.intValue == 1, "\(stats)")
        // Sent by the once-a-second timer when it changes.
        let line = "STATUS=2 jobs (1 running, 1 paused), 3 connections, 1 subscribers"
        let seen = notify.receive(until: line, timeout: .seconds(15))
        #expect(seen.found, "no \(line); got \(seen.seen)")
        #expect(try daemon.stop() == 0)
    }

    @Test("ltctl top --once prints the figures, every limit with its flag and use, and the users; --json the reply")
    func topOnce() throws {
        let daemon = try DaemonProcess.launch(tag: "top", arguments: ["--max-running-per-user", "3", "--max-connections", "50", "--max-connections-per-user", "10"])
        defer { daemon.cleanUp() }
        #expect(try daemon.ltctl(["start", "p", "--example", "colab", "--paused"]).status == 0)
        let result = try daemon.ltctl(["top", "--once"])
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(lines.first?.hasPrefix("ltd \(DefaultPaths.daemonVersion), pid \(daemon.pid), up ") == true, "\(result.stdout)")
        #expect(lines.contains { $0.hasPrefix("connections 1 from 1 user, 0 subscribing, 0 publishing") }, "\(result.stdout)")
        #expect(lines.contains { $0.hasPrefix("jobs 1: 1 paused; on disk ") }, "\(result.stdout)")
        let limits = lines.filter { $0.hasPrefix("--max-") }.map { $0.split(separator: " ").map(String.init) }
        #expect(limits.map { $0[0] } == ["--max-connections", "--max-connections-per-user", "--max-pending-line-bytes",
                                         "--max-queued-bytes", "--max-jobs", "--max-jobs-per-user", "--max-running-per-user",
                                         "--max-log-bytes", "--max-state-bytes", "--max-bytes-per-user"], "\(result.stdout)")
        #expect(limits.first == ["--max-connections", "1", "50", "2%"], "\(result.stdout)")
        #expect(limits.first { $0[0] == "--max-running-per-user" } == ["--max-running-per-user", "1", "3", "33%"])
        let me = String(cString: getpwuid(getuid()).pointee.pw_name)
        #expect(lines.contains { $0.hasPrefix(me) && $0.contains(" \(getuid()) ") }, "\(result.stdout)")

        let json = try daemon.ltctl(["top", "--json"])
        #expect(json.status == 0)
        let reply = try JSONParser.parse(Array(json.stdout.utf8.dropLast()))
        #expect(reply["type"]?.stringValue == "stats" && reply["limits"]?.arrayValue?.count == 10, "\(json.stdout)")
        #expect(try daemon.stop() == 0)
    }

    @Test("other users' rows are for root and the admin group; anyone sees the totals")
    func usersScope() throws {
        guard OwnerNamesTests.available() else { return }
        let (alice, bob, teacher) = try OwnerNamesTests.users()
        let (daemon, _) = try OwnerNamesTests.sharedDaemon("statsusers")
        defer { daemon.cleanUp() }
        _ = try OwnerNamesTests.requests(daemon, as: bob, [OwnerNamesTests.start("b1", id: 1)])
        let seen = try OwnerNamesTests.requests(daemon, as: alice, ["{\"op\":\"stats\",\"id\":1}"])[1] ?? .null
        #expect(seen["users_scope"]?.stringValue == "own", "\(seen)")
        #expect(seen["users"]?.arrayValue?.compactMap { $0["uid"]?.intValue } == [Int(alice.uid)], "\(seen)")
        #expect(seen["jobs"]?["total"]?.intValue == 1, "totals count bob's job")
        let teacherSees = try OwnerNamesTests.requests(daemon, as: teacher, ["{\"op\":\"stats\",\"id\":1}"])[1] ?? .null
        #expect(teacherSees["users_scope"]?.stringValue == "all", "\(teacherSees)")
        #expect(Set(teacherSees["users"]?.arrayValue?.compactMap { $0["uid"]?.intValue } ?? []) == [Int(bob.uid), Int(teacher.uid)], "\(teacherSees)")
        #expect(try daemon.stop() == 0)
    }
}

/// `ltctl top` live, in a tmux window: it refreshes as connections come and go, fits the window, and q quits.
@Suite("ltctl top, live", .serialized)
struct TopLiveTests {
    @Test("top redraws each second with the current figures, within the window, and q quits with 0")
    func live() throws {
        guard tmuxIsInstalled() else { return }
        let h = try DaemonProcess.launchForLtctl(tag: "toplive")
        let tmux = CtlWatchTests.Tmux(directory: h.directory)
        try tmux(["new-session", "-d", "-s", "s", "-x", "60", "-y", "20",
                  "NO_COLOR=1 LTD_SOCKET=\(h.socketPath) \(Paths.ltctl) top; echo exit=$?; sleep 60",
                  ";", "set-option", "-t", "s", "remain-on-exit", "on"])
        var screen = try tmux.waitFor("s") { $0.contains { $0.hasPrefix("connections 1 from 1 user") } }
        #expect(screen.contains { $0.hasPrefix("connections 1 from 1 user") }, "\(screen)")
        #expect(screen.count == 20 && screen.allSatisfy { $0.count <= 60 }, "\(screen)")
        let others = try (0..<3).map { _ in try LineClient(path: h.socketPath) }
        screen = try tmux.waitFor("s") { $0.contains { $0.hasPrefix("connections 4 from 1 user") } }
        #expect(screen.contains { $0.hasPrefix("connections 4 from 1 user") }, "\(screen)")
        #expect(others.count == 3)
        try tmux(["send-keys", "-t", "s", "q"])
        let after = try tmux.waitFor("s") { $0.contains { $0.hasPrefix("exit=") } }
        #expect(after.contains("exit=0"), "\(after)")
    }
}
