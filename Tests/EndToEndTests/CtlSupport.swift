import Foundation
import LTClient
import LTProtocol
#if canImport(Glibc)
import Glibc
#endif

/// A real `ltd` on a private socket (the daemon tests' `DaemonProcess`), and the real `ltctl` run against it, for
/// the ltctl end-to-end tests.
final class CtlHarness {
    struct Failure: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
        var stdoutBytes: Data
    }

    /// The real ltd, launched by the daemon tests' harness (Support/DaemonHarness.swift).
    let daemon: DaemonProcess
    var directory: String { daemon.directory }
    var socketPath: String { daemon.socketPath }

    static var ltctlPath: String { Harness.ltctlPath }
    static let testsDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()

    init() throws {
        daemon = try DaemonProcess.launch(tag: "ctl", arguments: ["--log-level", "warning"])
    }

    deinit {
        _ = try? daemon.stop()
        daemon.cleanUp()
    }

    /// posix_spawn with an empty signal mask: the test runner's threads block most signals and a child inherits
    /// that mask; tmux's server (started by its first client) needs SIGCHLD and friends.
    static func spawn(_ path: String, _ arguments: [String], stdout: String = "/dev/null") throws -> pid_t {
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK))
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, stdout, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        var argv: [UnsafeMutablePointer<CChar>?] = ([path] + arguments).map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, path, &actions, &attributes, &argv, environ)
        guard result == 0 else { throw Failure("cannot start \(path): \(String(cString: strerror(result)))") }
        return pid
    }

    /// Runs ltctl with `--socket`-free arguments (LTD_SOCKET points at this harness's daemon) and NO_COLOR.
    @discardableResult
    func ltctl(_ arguments: [String], stdin: Data? = nil, environment extra: [String: String] = [:], timeout: TimeInterval = 60) throws -> Result {
        var environment = ProcessInfo.processInfo.environment
        environment["LTD_SOCKET"] = socketPath
        environment["NO_COLOR"] = "1"
        for (k, v) in extra { environment[k] = v }
        return try Self.run(Self.ltctlPath, arguments, environment: environment, stdin: stdin, timeout: timeout)
    }

    static func run(_ path: String, _ arguments: [String], environment: [String: String], stdin: Data? = nil,
                    timeout: TimeInterval = 60) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        process.environment = environment
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        let input = Pipe()
        process.standardInput = stdin == nil ? FileHandle.nullDevice : input
        try process.run()
        if let stdin {
            input.fileHandleForWriting.write(stdin)
            try input.fileHandleForWriting.close()
        }
        // Read both pipes concurrently, so a chatty child never blocks on a full pipe.
        let errorData = ReadBox()
        let reader = Thread { errorData.set(err.fileHandleForReading.readDataToEndOfFile()) }
        reader.start()
        let timer = DispatchWorkItem { if process.isRunning { process.terminate() } }
        DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: timer)
        let outputData = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        timer.cancel()
        let stderrData = errorData.wait()
        return Result(status: process.terminationStatus, stdout: String(decoding: outputData, as: UTF8.self),
                      stderr: String(decoding: stderrData, as: UTF8.self), stdoutBytes: outputData)
    }

    /// Runs a command with a clean signal mask (see `spawn`) to completion; returns its status and stdout.
    static func runClean(_ path: String, _ arguments: [String], scratch: String) throws -> (status: Int32, stdout: String) {
        let output = scratch + "/run-\(UInt32.random(in: 0...UInt32.max)).out"
        defer { try? FileManager.default.removeItem(atPath: output) }
        let pid = try spawn(path, arguments, stdout: output)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        // WEXITSTATUS, spelled out: Glibc's macro is not imported into Swift.
        return ((status >> 8) & 0xFF, text)
    }

    /// Starts the classic twelve-point job (epochs 4, batch 4) and waits until it is over.
    func startColab(_ name: String, extra: [String] = []) throws {
        let result = try ltctl(["start", name, "--example", "colab"] + extra)
        guard result.status == 0 else { throw Failure("ltctl start failed (\(result.status)): \(result.stderr)") }
    }

    /// Waits for a job to reach a final state, by tailing it (which exits then).
    @discardableResult
    func waitFinished(_ name: String) throws -> Int32 {
        try ltctl(["tail", name, "--json"]).status
    }

    /// The job's events exactly as a raw protocol subscription from seq 1 delivers them, up to and including `end`.
    func rawSubscription(_ name: String) throws -> Data {
        let connection = try Connection(socketPath: socketPath)
        _ = try connection.subscribe(job: name, from: 1)
        var bytes = Data()
        while let line = try connection.reader.readLine() {
            bytes.append(contentsOf: line)
            bytes.append(0x0A)
            if (try? Event(line: line))?.type == .end { break }
        }
        return bytes
    }

    /// A snapshot file under Snapshots/. With LTCTL_UPDATE_SNAPSHOTS=1 the actual text is written instead
    /// (review it by hand against the golden trace before committing).
    static func snapshot(_ name: String, actual: String) throws -> String {
        let url = testsDirectory.appendingPathComponent("Snapshots").appendingPathComponent(name)
        if ProcessInfo.processInfo.environment["LTCTL_UPDATE_SNAPSHOTS"] == "1" {
            try actual.write(to: url, atomically: true, encoding: .utf8)
        }
        return try String(contentsOf: url, encoding: .utf8)
    }

    /// The golden Keras trace of the twelve-point example at epochs 4, batch 4.
    static func goldenSteps() throws -> [JSONValue] {
        let url = testsDirectory.appendingPathComponent("Fixtures").appendingPathComponent("seed_e4_b4.trace.ndjson")
        let text = try String(contentsOf: url, encoding: .utf8)
        return try text.split(separator: "\n").map { try JSONParser.parse(String($0)) }.filter { $0["type"]?.stringValue == "step" }
    }
}

/// A value handed from a reader thread to the test thread.
final class ReadBox: @unchecked Sendable {
    private let lock = NSCondition()
    private var value: Data?
    func set(_ data: Data) { lock.lock(); value = data; lock.signal(); lock.unlock() }
    func wait() -> Data {
        lock.lock()
        while value == nil { lock.wait() }
        let v = value ?? Data()
        lock.unlock()
        return v
    }
}
