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
    func runRefused(_ arguments: [String], timeout: Duration = .seconds(20)) throws -> (status: Int32, stderr: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Harness.ltdPath)
        process.arguments = arguments
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        try Harness.wait(timeout, "ltd to give up") { !process.isRunning }
        let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        return (process.terminationStatus, text)
    }

    @Test("a socket path longer than sun_path is refused clearly")
    func tooLong() throws {
        let directory = try Harness.temporaryDirectory("long")
        defer { Harness.remove(directory) }
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
        let directory = try Harness.temporaryDirectory("mode")
        defer { Harness.remove(directory) }
        chmod(directory, 0o777)
        let socket = directory + "/run/ltd/ltd.sock"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
        process.arguments = ["--reuid=65534", "--regid=65534", "--clear-groups", Harness.ltdPath,
                             "--socket", socket, "--state-dir", directory + "/state"]
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        try Harness.wait(.seconds(20), "the socket to appear") { FileManager.default.fileExists(atPath: socket) }
        var info = stat()
        #expect(stat(socket, &info) == 0)
        #expect(info.st_mode & 0o777 == 0o600)
        #expect(info.st_uid == 65534)
        #expect(stat(directory + "/run/ltd", &info) == 0)
        #expect(info.st_mode & 0o777 == 0o700)
        #expect(stat(directory + "/state", &info) == 0)
        #expect(info.st_mode & 0o777 == 0o700)
        kill(process.processIdentifier, SIGTERM)
        try Harness.wait(.seconds(20), "ltd to stop") { !process.isRunning }
        #expect(process.terminationStatus == 0)
    }

    @Test("--help teaches the flags, the defaults and the environment")
    func help() throws {
        let result = try Harness.run(Harness.ltdPath, ["--help"])
        #expect(result.status == 0)
        for needle in ["--socket", "--state-dir", "--max-line-bytes", "--log-level", "LTD_SOCKET", "LTD_STATE_DIR", "XDG_RUNTIME_DIR", "SIGTERM"] {
            #expect(result.output.contains(needle), "help lacks \(needle)")
        }
    }
}
