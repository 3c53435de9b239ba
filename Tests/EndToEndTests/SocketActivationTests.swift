import Foundation
import LTProtocol
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The real ltd under the two systemd protocols, without systemd: `systemd-socket-activate` passes it a listening
/// socket exactly as a socket unit does (LISTEN_PID/LISTEN_FDS, fd 3), and a datagram socket bound by the test plays
/// `$NOTIFY_SOCKET`.
@Suite(.serialized) struct SocketActivationTests {
    static let activate = "/usr/bin/systemd-socket-activate"

    /// A daemon under test, started as systemd would start it and killed if a test leaves it running.
    static func startDaemon(_ arguments: [String], environment: [String: String]) throws -> ChildProcess {
        // The daemon's own logs are not under test; LTD_TEST_VERBOSE=1 shows them.
        let output: ChildProcess.Stream = ProcessInfo.processInfo.environment["LTD_TEST_VERBOSE"] == nil ? .null : .inherited
        return try ChildProcess(arguments, environment: environment, stdout: output, stderr: output)
    }

    static func baseEnvironment() -> [String: String] {
        let inherited = ProcessInfo.processInfo.environment
        return ["PATH": inherited["PATH"] ?? "/usr/bin:/bin", "HOME": inherited["HOME"] ?? "/tmp"]
    }

    static func isSocket(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFSOCK
    }

    /// Sends hello and returns the reply's fields.
    static func hello(_ connection: LineClient, id: Int) throws -> JSONValue {
        try connection.request(#"{"op":"hello","id":\#(id)}"#, timeout: .seconds(10))
    }

    @Test func activatedDaemonServesThePassedSocketAndNeverUnlinksIt() throws {
        let directory = try Paths.temporaryDirectory("act")
        defer { Paths.remove(directory) }
        let socketPath = directory + "/ltd.sock"
        let daemon = try Self.startDaemon(
            [Self.activate, "-l", socketPath, Paths.ltd, "--state-dir", directory + "/state"],
            environment: Self.baseEnvironment())

        // systemd-socket-activate execs ltd in place on the first connection, so ltd's pid is the process's pid.
        let first = try LineClient(path: socketPath, retryFor: .seconds(10))
        let reply = try Self.hello(first, id: 1)
        #expect(reply["type"]?.stringValue == "hello")
        #expect(reply["id"]?.intValue == 1)
        #expect(reply["protocol"]?.intValue == DefaultPaths.protocolVersion)
        #expect(reply["pid"]?.intValue == Int(daemon.pid))
        #expect(reply["uid"]?.intValue == Int(getuid()))

        // The listener stays open for more clients while the first is connected.
        let second = try LineClient(path: socketPath)
        #expect(try Self.hello(second, id: 2)["type"]?.stringValue == "hello")

        daemon.signal(SIGTERM)
        let status = try daemon.waitForExit(timeout: .seconds(15))
        #expect(status == 0, "ltd should exit 0 on SIGTERM")
        // The socket belongs to whoever activated ltd: still there after ltd is gone.
        #expect(Self.isSocket(socketPath), "ltd unlinked a socket it was given")
    }

    @Test func activatedDaemonNotifiesReadyStatusAndStopping() throws {
        let directory = try Paths.temporaryDirectory("actn")
        defer { Paths.remove(directory) }
        let socketPath = directory + "/ltd.sock"
        let notify = try NotifySocket(name: directory + "/notify")
        // systemd-socket-activate passes on only what -E names.
        let daemon = try Self.startDaemon(
            [Self.activate, "-l", socketPath, "-E", "NOTIFY_SOCKET=" + notify.name,
             Paths.ltd, "--state-dir", directory + "/state"],
            environment: Self.baseEnvironment())

        let connection = try LineClient(path: socketPath, retryFor: .seconds(10))
        let ready = notify.receive(until: "READY=1", timeout: .seconds(15))
        #expect(ready.found, "no READY=1; got \(ready.seen)")
        #expect(try Self.hello(connection, id: 1)["type"]?.stringValue == "hello")

        daemon.signal(SIGTERM)
        let stopping = notify.receive(until: "STOPPING=1", timeout: .seconds(15))
        #expect(stopping.found, "no STOPPING=1 after SIGTERM; got \(stopping.seen)")
        let everything = (ready.seen + stopping.seen).flatMap { $0.split(separator: "\n") }
        #expect(everything.contains { $0.hasPrefix("STATUS=") }, "no STATUS= line; got \(everything)")
        #expect(try daemon.waitForExit(timeout: .seconds(15)) == 0)
        #expect(Self.isSocket(socketPath), "ltd unlinked a socket it was given")
    }

    /// Started directly (no activation), ltd binds its own socket, says READY=1 only once that socket accepts,
    /// pings the watchdog at half of WATCHDOG_USEC, and says STOPPING=1 on SIGTERM.
    @Test func directlyStartedDaemonNotifiesReadyWatchdogAndStopping() throws {
        let directory = try Paths.temporaryDirectory("notify")
        defer { Paths.remove(directory) }
        let socketPath = directory + "/ltd.sock"
        let notify = try NotifySocket(name: directory + "/notify")
        var environment = Self.baseEnvironment()
        environment["NOTIFY_SOCKET"] = notify.name
        environment["WATCHDOG_USEC"] = "200000"
        let daemon = try Self.startDaemon(
            [Paths.ltd, "--socket", socketPath, "--state-dir", directory + "/state"],
            environment: environment)

        let ready = notify.receive(until: "READY=1", timeout: .seconds(15))
        try #require(ready.found, "no READY=1; got \(ready.seen)")
        // READY=1 promises a socket that accepts now: one attempt, no retry.
        let connection = try LineClient(path: socketPath)
        #expect(try Self.hello(connection, id: 7)["pid"]?.intValue == Int(daemon.pid))

        // WATCHDOG_USEC=0.2 s asks for a ping every 0.1 s; two within 10 s is a liveness check, not a timing test.
        let firstPing = notify.receive(until: "WATCHDOG=1", timeout: .seconds(10))
        let secondPing = notify.receive(until: "WATCHDOG=1", timeout: .seconds(10))
        #expect(firstPing.found && secondPing.found, "watchdog pings missing; got \(firstPing.seen + secondPing.seen)")

        daemon.signal(SIGTERM)
        let stopping = notify.receive(until: "STOPPING=1", timeout: .seconds(15))
        #expect(stopping.found, "no STOPPING=1 after SIGTERM; got \(stopping.seen)")
        #expect(try daemon.waitForExit(timeout: .seconds(15)) == 0)
    }
}
