import Foundation
import LTProtocol
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Socket-path care, as tmux takes it: refuse what cannot work, replace what is stale, never share a socket.
@Suite("ltd socket setup", .serialized)
struct DaemonSocketTests {
    /// Runs ltd to completion (it is expected to refuse to start); returns its exit status and stderr.
    func runRefused(_ arguments: [String]) throws -> CommandResult {
        try Command.run([Paths.ltd] + arguments, timeout: .seconds(20))
    }

    @Test("a socket path longer than sun_path is refused clearly")
    func tooLong() throws {
        let directory = try Paths.temporaryDirectory("long")
        defer { Paths.remove(directory) }
        let path = directory + "/" + String(repeating: "s", count: 110) + ".sock"
        let result = try runRefused(["--socket", path, "--state-dir", directory + "/state"])
        #expect(result.status == 1)
        #expect(result.stderr.contains("must be shorter than 108 bytes"), "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: path))
    }

    @Test("a second ltd on a live socket refuses; a stale socket is replaced; a non-socket is refused")
    func liveStaleAndForeign() throws {
        let daemon = try DaemonProcess.launch(tag: "live")
        defer { daemon.cleanUp() }
        let second = try runRefused(["--socket", daemon.socketPath, "--state-dir", daemon.directory + "/other"])
        #expect(second.status == 1)
        #expect(second.stderr.contains("another ltd is already listening"), "\(second.stderr)")
        // The first daemon is unharmed.
        #expect(try LineClient(path: daemon.socketPath).request("{\"op\":\"hello\"}")["type"]?.stringValue == "hello")

        // kill -9 leaves the socket file behind; the next ltd replaces it.
        try daemon.killHard()
        #expect(FileManager.default.fileExists(atPath: daemon.socketPath))
        try daemon.start()
        #expect(daemon.stderr.contains("removed stale socket"))
        #expect(try daemon.stop() == 0)
        #expect(!FileManager.default.fileExists(atPath: daemon.socketPath), "a clean shutdown removes its socket")

        let file = daemon.directory + "/plain"
        #expect(FileManager.default.createFile(atPath: file, contents: Data("x".utf8)))
        let foreign = try runRefused(["--socket", file, "--state-dir", daemon.stateDirectory])
        #expect(foreign.status == 1)
        #expect(foreign.stderr.contains("is not a socket"), "\(foreign.stderr)")
    }

    @Test("in user mode the socket is 0600 and a missing socket directory is created 0700")
    func userModeSocket() throws {
        guard getuid() == 0 else { return }   // needs root to run ltd as another user
        let daemon = try NobodyDaemon.launch(tag: "mode", socket: "run/ltd/ltd.sock")
        defer { daemon.cleanUp() }
        let directory = daemon.directory, socket = daemon.socketPath
        var info = stat()
        #expect(stat(socket, &info) == 0)
        #expect(info.st_mode & 0o777 == 0o600)
        #expect(info.st_uid == 65534)
        #expect(stat(directory + "/run/ltd", &info) == 0)
        #expect(info.st_mode & 0o777 == 0o700)
        #expect(stat(directory + "/state", &info) == 0)
        #expect(info.st_mode & 0o777 == 0o700)
        #expect(try daemon.stop() == 0)
    }

    @Test("socket activation: uses fd 3, notifies READY, STATUS, WATCHDOG and STOPPING, never unlinks the socket")
    func socketActivation() throws {
        let directory = try Paths.temporaryDirectory("act")
        defer { Paths.remove(directory) }
        let notify = try NotifySocket(name: directory + "/notify")
        let socket = directory + "/act.sock"
        let daemon = try ChildProcess(["/usr/bin/systemd-socket-activate", "-E", "NOTIFY_SOCKET=" + notify.name, "-E", "WATCHDOG_USEC=200000",
                                       "-l", socket, Paths.ltd, "--state-dir", directory + "/state", "--socket", directory + "/unused.sock"])
        try waitUntil("the activation socket", timeout: .seconds(10)) { FileManager.default.fileExists(atPath: socket) }
        // The first connection makes systemd-socket-activate exec ltd with the listening socket as fd 3.
        let client = try LineClient(path: socket)
        #expect(try client.request("{\"op\":\"hello\"}")["pid"]?.intValue == Int(daemon.pid))
        #expect(notify.receive(until: "READY=1", timeout: .seconds(10)).found)
        let seen = notify.receive(until: "WATCHDOG=1", timeout: .seconds(5))
        #expect(seen.found)
        #expect(seen.seen.contains { $0.hasPrefix("STATUS=") } || notify.receive(until: "WATCHDOG=1", timeout: .seconds(2)).found)
        daemon.signal(SIGTERM)
        #expect(notify.receive(until: "STOPPING=1", timeout: .seconds(10)).found)
        #expect(try daemon.waitForExit(timeout: .seconds(20)) == 0)
        #expect(FileManager.default.fileExists(atPath: socket), "a socket passed by systemd is never unlinked")
        #expect(!FileManager.default.fileExists(atPath: directory + "/unused.sock"))
    }

    @Test("--help teaches the flags, the defaults and the environment")
    func help() throws {
        let result = try Command.run([Paths.ltd, "--help"])
        #expect(result.status == 0)
        for needle in ["--socket", "--state-dir", "--max-line-bytes", "--log-level", "LTD_SOCKET", "LTD_STATE_DIR", "XDG_RUNTIME_DIR", "SIGTERM"] {
            #expect(result.stdout.contains(needle), "help lacks \(needle)")
        }
    }
}
