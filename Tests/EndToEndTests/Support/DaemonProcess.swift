import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A running `ltd` on its own socket and state directory in a fresh temporary directory; its stderr is appended
/// to `stderrPath`, across restarts.
final class DaemonProcess {
    let directory: String
    let socketPath: String
    let stateDirectory: String
    let stderrPath: String
    private(set) var child: ChildProcess?

    /// Starts ltd and waits until it answers on its socket. `directory` is created when nil.
    static func launch(tag: String = "e2e", directory: String? = nil, arguments: [String] = [],
                       environment: [String: String] = [:]) throws -> DaemonProcess {
        let daemon = DaemonProcess(directory: try directory ?? Paths.temporaryDirectory(tag))
        try daemon.start(arguments: arguments, environment: environment)
        return daemon
    }

    private init(directory: String) {
        self.directory = directory
        socketPath = directory + "/ltd.sock"
        stateDirectory = directory + "/state"
        stderrPath = directory + "/ltd.stderr"
    }

    deinit { cleanUp() }

    var pid: pid_t { child?.pid ?? -1 }

    /// (Re)starts the daemon on the same socket and state directory.
    func start(arguments: [String] = [], environment: [String: String] = [:]) throws {
        var inherited = ProcessInfo.processInfo.environment
        // A test runner started by systemd must not hand its own socket activation or watchdog to the daemon.
        for key in ["LISTEN_PID", "LISTEN_FDS", "NOTIFY_SOCKET", "WATCHDOG_USEC", "JOURNAL_STREAM"] { inherited[key] = nil }
        inherited.merge(environment) { $1 }
        let child = try ChildProcess([Paths.ltd, "--socket", socketPath, "--state-dir", stateDirectory] + arguments,
                                     environment: inherited, stderr: .file(stderrPath, append: true))
        self.child = child
        try waitUntilAccepting(child, socket: socketPath) { ": " + self.stderr }
    }

    var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

    func signal(_ number: Int32) { child?.signal(number) }

    /// Waits for the daemon to exit; returns its exit status.
    @discardableResult
    func waitForExit(timeout: Duration = .seconds(30)) throws -> Int32 {
        guard let child else { throw HarnessFailure("ltd was never started") }
        return try child.waitForExit(timeout: timeout)
    }

    /// SIGTERM, then the exit status.
    func stop() throws -> Int32 {
        signal(SIGTERM)
        return try waitForExit()
    }

    func killHard() throws {
        signal(SIGKILL)
        try waitForExit()
    }

    /// Resident memory in KiB from /proc/PID/status.
    func residentKiB() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return 0 }
        for line in text.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0
        }
        return 0
    }

    /// A job's directory (StateStore.swift: by owner uid, then name); the owner is whoever runs the test by default.
    func jobDirectory(_ job: String, owner: uid_t = getuid()) -> String { stateDirectory + "/owners/\(owner)/\(job)" }
    func logPath(job: String) -> String { jobDirectory(job) + "/events.ndjson" }
    func checkpointPath(job: String) -> String { jobDirectory(job) + "/checkpoint.json" }

    /// Kills the daemon if it still runs and removes its directory.
    func cleanUp() {
        child?.killAndReap()
        Paths.remove(directory)
    }
}

/// Waits until the ltd running as `child` accepts connections on `socket`; fails at once if it exits, saying
/// `detail()` too (e.g. its stderr).
func waitUntilAccepting(_ child: ChildProcess, socket: String, detail: () -> String = { "" }) throws {
    try waitUntil("ltd to accept connections on \(socket)") {
        guard child.isRunning else { throw HarnessFailure("ltd exited with \(child.exitStatus ?? -1)\(detail())") }
        return (try? LineClient(path: socket)) != nil
    }
}

/// `arguments` run as uid and gid 65534 (nobody) with no supplementary groups: another user, for tests that need root.
let asNobody = ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]

/// ltd run as nobody (uid 65534), for tests of a daemon of another user (they need root): in a fresh temporary
/// directory that nobody may write (mode 0777), its state in `directory/state`, its socket at `socketPath`; launched
/// once it accepts connections (root may connect to its 0600 socket). Killed and its directory removed by `cleanUp`.
final class NobodyDaemon {
    let directory: String
    let socketPath: String
    let child: ChildProcess

    /// `socket` is the socket's path inside the directory (ltd makes the directories on its way).
    static func launch(tag: String, socket: String = "ltd.sock") throws -> NobodyDaemon {
        let directory = try Paths.temporaryDirectory(tag)
        do {
            chmod(directory, 0o777)
            let socketPath = directory + "/" + socket
            let child = try ChildProcess(asNobody + [Paths.ltd, "--socket", socketPath, "--state-dir", directory + "/state"])
            try waitUntilAccepting(child, socket: socketPath)
            return NobodyDaemon(directory: directory, socketPath: socketPath, child: child)
        } catch {
            Paths.remove(directory)
            throw error
        }
    }

    private init(directory: String, socketPath: String, child: ChildProcess) {
        self.directory = directory
        self.socketPath = socketPath
        self.child = child
    }

    deinit { cleanUp() }

    /// SIGTERM, then the exit status.
    func stop() throws -> Int32 {
        child.signal(SIGTERM)
        return try child.waitForExit(timeout: .seconds(20))
    }

    func cleanUp() {
        child.killAndReap()
        Paths.remove(directory)
    }
}
