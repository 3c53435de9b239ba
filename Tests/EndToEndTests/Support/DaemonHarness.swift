import Foundation
import LTProtocol
#if canImport(Glibc)
import Glibc
#endif

/// Helpers for end-to-end tests that run the real `ltd` binary on a temporary socket and state directory and
/// talk to it over a real Unix socket. Reusable by the ltctl tests: `DaemonProcess.launch()` gives a running
/// daemon, `LineClient` a blocking NDJSON connection. Every wait has a timeout, so a broken daemon fails a test
/// instead of hanging the suite.
struct HarnessFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

enum Harness {
    /// The directory of the built products: `LTD_BIN_DIR`, else the directory of the test runner (SwiftPM puts
    /// `ltdPackageTests.xctest` next to `ltd` and `ltctl`), else `swift build --show-bin-path`.
    static let productsDirectory: String = {
        if let override = ProcessInfo.processInfo.environment["LTD_BIN_DIR"], !override.isEmpty { return override }
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var directory = URL(fileURLWithPath: executable).deletingLastPathComponent()
        while directory.path != "/" {
            if FileManager.default.isExecutableFile(atPath: directory.appendingPathComponent("ltd").path) { return directory.path }
            directory = directory.deletingLastPathComponent()
        }
        let output = (try? run("/usr/bin/env", ["swift", "build", "--show-bin-path"]).output) ?? ""
        return output.trimmingCharacters(in: .whitespacesAndNewlines)
    }()

    static var ltdPath: String { productsDirectory + "/ltd" }
    static var ltctlPath: String { productsDirectory + "/ltctl" }

    /// A fresh directory under /tmp (short, so socket paths fit in sun_path).
    static func temporaryDirectory(_ tag: String) throws -> String {
        var template = Array("/tmp/ltd-\(tag)-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { buffer -> UnsafeMutablePointer<CChar>? in
            guard let base = buffer.baseAddress else { return nil }
            return mkdtemp(base)
        }
        guard let made else { throw HarnessFailure("mkdtemp failed: errno \(errno)") }
        return String(cString: made)
    }

    static func remove(_ path: String) { try? FileManager.default.removeItem(atPath: path) }

    /// Runs a command to completion; returns its exit status and combined stdout.
    @discardableResult
    static func run(_ executable: String, _ arguments: [String], input: Data? = nil) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        let inPipe = Pipe()
        process.standardInput = input == nil ? FileHandle.nullDevice : inPipe
        try process.run()
        if let input {
            inPipe.fileHandleForWriting.write(input)
            try? inPipe.fileHandleForWriting.close()
        }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// Polls `condition` every 10 ms until it holds or `timeout` passes.
    static func wait(_ timeout: Duration = .seconds(20), _ what: String, _ condition: () throws -> Bool) throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try condition() { return }
            usleep(10_000)
        }
        throw HarnessFailure("timed out after \(timeout) waiting for \(what)")
    }

    static func lines(ofFile path: String) throws -> [[UInt8]] {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        return splitLines([UInt8](data))
    }

    /// Splits NDJSON bytes into lines, each with its trailing `\n`.
    static func splitLines(_ bytes: [UInt8]) -> [[UInt8]] {
        var result: [[UInt8]] = []
        var start = 0
        for (i, byte) in bytes.enumerated() where byte == 0x0A {
            result.append(Array(bytes[start...i]))
            start = i + 1
        }
        return result
    }

    /// A job spec as JSON text: `rows` points on a noisy line, batch `batch`, `epochs` epochs.
    static func spec(rows: Int = 12, epochs: Int = 4, batch: Int = 4, paceMs: Int = 0, paused: Bool = false,
                     optimizer: String = "adam", fast: Bool = true, extra: String = "") -> String {
        let xs = (0..<rows).map { Double($0 % 97) }
        let ys = xs.enumerated().map { 3 * $1 + 2 + Double(($0 * 7) % 11) / 10 }
        func list(_ v: [Double]) -> String { "[" + v.map { String($0) }.joined(separator: ",") + "]" }
        return "{\"data\":{\"x\":\(list(xs)),\"y\":\(list(ys))},\"init\":{\"kernel\":0.5,\"bias\":0},"
            + "\"optimizer\":{\"name\":\"\(optimizer)\",\"learning_rate\":0.01},\"epochs\":\(epochs),\"batch_size\":\(batch),"
            + "\"pace_ms\":\(paceMs),\"paused\":\(paused),\"validation_mode\":\"\(fast ? "fast" : "exact")\"\(extra)}"
    }
}

/// A running `ltd` on its own socket and state directory; its stderr goes to `stderrPath`.
final class DaemonProcess {
    let directory: String
    let socketPath: String
    let stateDirectory: String
    let stderrPath: String
    private(set) var process: Process

    /// Starts ltd and waits until it answers on its socket. `directory` is created when nil.
    static func launch(tag: String = "e2e", directory: String? = nil, arguments: [String] = [],
                       environment: [String: String] = [:]) throws -> DaemonProcess {
        let directory = try directory ?? Harness.temporaryDirectory(tag)
        let daemon = DaemonProcess(directory: directory)
        try daemon.start(arguments: arguments, environment: environment)
        return daemon
    }

    private init(directory: String) {
        self.directory = directory
        socketPath = directory + "/ltd.sock"
        stateDirectory = directory + "/state"
        stderrPath = directory + "/ltd.stderr"
        process = Process()
    }

    var pid: Int32 { process.processIdentifier }

    /// (Re)starts the daemon on the same socket and state directory.
    func start(arguments: [String] = [], environment: [String: String] = [:]) throws {
        process = Process()
        process.executableURL = URL(fileURLWithPath: Harness.ltdPath)
        process.arguments = ["--socket", socketPath, "--state-dir", stateDirectory] + arguments
        var env = ProcessInfo.processInfo.environment
        for key in ["LISTEN_PID", "LISTEN_FDS", "NOTIFY_SOCKET", "WATCHDOG_USEC", "JOURNAL_STREAM"] { env[key] = nil }
        for (key, value) in environment { env[key] = value }
        process.environment = env
        if !FileManager.default.fileExists(atPath: stderrPath) {
            _ = FileManager.default.createFile(atPath: stderrPath, contents: nil)
        }
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: stderrPath))
        log.seekToEndOfFile()
        process.standardError = log
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        try Harness.wait(.seconds(20), "ltd to accept connections on \(socketPath)") {
            guard process.isRunning else { throw HarnessFailure("ltd exited with \(process.terminationStatus): \(stderr)") }
            return (try? LineClient(path: socketPath)) != nil
        }
    }

    var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

    func signal(_ number: Int32) { kill(pid, number) }

    /// Waits for the daemon to exit; returns its exit status.
    @discardableResult
    func waitForExit(timeout: Duration = .seconds(30)) throws -> Int32 {
        try Harness.wait(timeout, "ltd to exit") { !process.isRunning }
        return process.terminationStatus
    }

    /// SIGTERM, then the exit status.
    func stop() throws -> Int32 {
        guard process.isRunning else { return process.terminationStatus }
        signal(SIGTERM)
        return try waitForExit()
    }

    func killHard() throws {
        signal(SIGKILL)
        _ = try waitForExit()
    }

    /// Resident memory in KiB from /proc/PID/status.
    func residentKiB() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return 0 }
        for line in text.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0
        }
        return 0
    }

    func logPath(job: String) -> String { stateDirectory + "/jobs/\(job)/events.ndjson" }
    func checkpointPath(job: String) -> String { stateDirectory + "/jobs/\(job)/checkpoint.json" }

    /// Stops the daemon if it still runs and removes its directory.
    func cleanUp() {
        if process.isRunning { kill(pid, SIGKILL); process.waitUntilExit() }
        Harness.remove(directory)
    }
}

/// A blocking NDJSON connection to a Unix socket (test side; no libuv).
final class LineClient {
    let fd: Int32
    private var buffer: [UInt8] = []
    private var start = 0

    init(path: String) throws {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw HarnessFailure("socket: errno \(errno)") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { close(fd); throw HarnessFailure("path too long") }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in for (i, b) in bytes.enumerated() { raw[i] = b } }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard result == 0 else {
            let code = errno
            close(fd)
            throw HarnessFailure("connect \(path): \(String(cString: strerror(code)))")
        }
    }

    deinit { close(fd) }

    func send(_ text: String) throws { try send(Array(text.utf8)) }

    func send(_ bytes: [UInt8]) throws {
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { raw -> Int in
                guard let base = raw.baseAddress else { return 0 }
                return Glibc.send(fd, base + done, raw.count - done, Int32(MSG_NOSIGNAL))
            }
            if n < 0 { if errno == EINTR { continue }; throw HarnessFailure("send: \(String(cString: strerror(errno)))") }
            done += n
        }
    }

    /// The next line (with its `\n`), nil at end of stream; throws after `timeout` without one.
    func readLine(timeout: Duration = .seconds(30)) throws -> [UInt8]? {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let newline = buffer[start...].firstIndex(of: 0x0A) {
                let line = Array(buffer[start...newline])
                start = newline + 1
                if start > 1 << 20 { buffer.removeFirst(start); start = 0 }
                return line
            }
            let remaining = deadline - ContinuousClock.now
            guard remaining > .zero else { throw HarnessFailure("no line within \(timeout)") }
            var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let milliseconds = Int32(clamping: remaining.components.seconds * 1000 + remaining.components.attoseconds / 1_000_000_000_000_000 + 1)
            let ready = poll(&descriptor, 1, milliseconds)
            if ready < 0 && errno == EINTR { continue }
            if ready == 0 { continue }
            var chunk = [UInt8](repeating: 0, count: 256 * 1024)
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 { if errno == EINTR { continue }; throw HarnessFailure("recv: \(String(cString: strerror(errno)))") }
            if n == 0 { return start < buffer.count ? Array(buffer[start...]) : nil }
            buffer.append(contentsOf: chunk[0..<n])
        }
    }

    func readJSON(timeout: Duration = .seconds(30)) throws -> JSONValue {
        guard let line = try readLine(timeout: timeout) else { throw HarnessFailure("connection closed") }
        return try JSONParser.parse(line.dropLast())
    }

    /// Sends one request line and returns the next line as JSON (the reply, when nothing else is streaming).
    func request(_ text: String) throws -> JSONValue {
        try send(text + "\n")
        return try readJSON()
    }

    /// Reads lines until the job's `end` event (inclusive); returns them all.
    func readUntilEnd(timeout: Duration = .seconds(120)) throws -> [[UInt8]] {
        var lines: [[UInt8]] = []
        while true {
            guard let line = try readLine(timeout: timeout) else { throw HarnessFailure("connection closed after \(lines.count) lines") }
            lines.append(line)
            if line.starts(with: Array("{\"type\":\"end\"".utf8)) { return lines }
        }
    }
}
