import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Real sockets, real binaries and temporary directories for the systemd, socket-activation and install tests.
/// Everything blocks with a timeout, so a broken daemon fails a test instead of hanging the suite.
enum SystemdTestSupport {
    struct Failure: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    /// The repository root, found from this file's path.
    static let repositoryRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The directory holding the built products (ltd, ltctl): the test bundle lives next to them.
    static var productsDirectory: URL {
        if let override = ProcessInfo.processInfo.environment["LTD_BIN_DIR"], !override.isEmpty {
            return URL(fileURLWithPath: override)
        }
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
            ?? CommandLine.arguments[0]
        var directory = URL(fileURLWithPath: executable).deletingLastPathComponent()
        // On Linux the runner is `<products>/ltdPackageTests.xctest`; be tolerant of a bundle directory layout.
        while directory.path != "/" && !FileManager.default.fileExists(atPath: directory.appendingPathComponent("ltd").path) {
            directory = directory.deletingLastPathComponent()
        }
        return directory
    }

    static var ltdPath: String { productsDirectory.appendingPathComponent("ltd").path }

    /// A fresh directory under /tmp, short enough for socket paths (sun_path holds 107 bytes).
    static func temporaryDirectory(_ tag: String) throws -> String {
        var template = Array("/tmp/ltd-\(tag)-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { buffer -> UnsafeMutablePointer<CChar>? in
            guard let base = buffer.baseAddress else { return nil }
            return mkdtemp(base)
        }
        guard let made else { throw Failure("mkdtemp failed: errno \(errno)") }
        return String(cString: made)
    }

    static func removeTree(_ path: String) {
        try? FileManager.default.removeItem(atPath: path)
    }

    /// Fills a `sockaddr_un` for a path, or for an abstract name when `name` starts with "@".
    static func unixAddress(_ name: String) throws -> (sockaddr_un, socklen_t) {
        var bytes = Array(name.utf8)
        if bytes.first == UInt8(ascii: "@") { bytes[0] = 0 } else { bytes.append(0) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard bytes.count <= capacity else { throw Failure("socket address too long: \(name)") }
        withUnsafeMutableBytes(of: &address.sun_path) { path in
            for (index, byte) in bytes.enumerated() { path[index] = byte }
        }
        let length = socklen_t(MemoryLayout<sockaddr_un>.offset(of: \sockaddr_un.sun_path) ?? 2) + socklen_t(bytes.count)
        return (address, length)
    }

    /// Waits until `fd` is readable or `timeout` passes. True when readable.
    static func waitReadable(_ fd: Int32, timeout: Duration) -> Bool {
        let milliseconds = Int32(clamping: timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
        var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        while true {
            let ready = poll(&descriptor, 1, milliseconds)
            if ready < 0 && errno == EINTR { continue }
            return ready > 0
        }
    }

    /// A datagram socket the test binds, standing in for systemd's `$NOTIFY_SOCKET`.
    final class DatagramReceiver {
        let fd: Int32
        let name: String

        init(name: String) throws {
            fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { throw Failure("socket: errno \(errno)") }
            self.name = name
            var (address, length) = try unixAddress(name)
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
            }
            guard bound == 0 else {
                let code = errno
                close(fd)
                throw Failure("bind \(name): errno \(code)")
            }
        }

        deinit {
            close(fd)
            if !name.hasPrefix("@") { unlink(name) }
        }

        /// The next datagram, or nil after `timeout`.
        func receive(timeout: Duration) -> String? {
            guard waitReadable(fd, timeout: timeout) else { return nil }
            var buffer = [UInt8](repeating: 0, count: 4096)
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard count >= 0 else { return nil }
            return String(decoding: buffer[0..<count], as: UTF8.self)
        }

        /// Receives until a datagram contains the assignment `line` (e.g. "READY=1"); returns everything seen.
        func receive(until line: String, timeout: Duration) -> (found: Bool, seen: [String]) {
            let deadline = ContinuousClock.now + timeout
            var seen: [String] = []
            while ContinuousClock.now < deadline {
                guard let message = receive(timeout: deadline - ContinuousClock.now) else { break }
                seen.append(message)
                if message.split(separator: "\n").contains(Substring(line)) { return (true, seen) }
            }
            return (false, seen)
        }
    }

    /// A blocking NDJSON connection to a Unix stream socket, enough to speak a request or two of the protocol.
    final class LineConnection {
        let fd: Int32
        private var pending: [UInt8] = []

        init(path: String, timeout: Duration = .seconds(10)) throws {
            let deadline = ContinuousClock.now + timeout
            var (address, length) = try unixAddress(path)
            while true {
                let candidate = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
                guard candidate >= 0 else { throw Failure("socket: errno \(errno)") }
                let connected = withUnsafePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(candidate, $0, length) }
                }
                if connected == 0 {
                    fd = candidate
                    return
                }
                let code = errno
                close(candidate)
                // The daemon may not have bound yet; anything else is a real failure.
                guard code == ENOENT || code == ECONNREFUSED, ContinuousClock.now < deadline else {
                    throw Failure("connect \(path): errno \(code)")
                }
                usleep(20_000)
            }
        }

        deinit { close(fd) }

        func send(_ line: String) throws {
            let bytes = Array((line + "\n").utf8)
            var offset = 0
            while offset < bytes.count {
                let written = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if written < 0 && errno == EINTR { continue }
                guard written > 0 else { throw Failure("send: errno \(errno)") }
                offset += written
            }
        }

        /// The next line without its newline, or nil at end of stream or after `timeout`.
        func readLine(timeout: Duration = .seconds(10)) -> String? {
            let deadline = ContinuousClock.now + timeout
            while true {
                if let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                    let line = String(decoding: pending[..<newline], as: UTF8.self)
                    pending.removeSubrange(...newline)
                    return line
                }
                let now = ContinuousClock.now
                guard now < deadline, waitReadable(fd, timeout: deadline - now) else { return nil }
                var buffer = [UInt8](repeating: 0, count: 65536)
                let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if count < 0 && errno == EINTR { continue }
                guard count > 0 else { return nil }
                pending.append(contentsOf: buffer[0..<count])
            }
        }
    }

    /// A child started the way systemd starts a service: every signal unblocked and at its default disposition.
    /// Foundation's `Process` passes on the test runner's signal mask, in which SIGTERM is blocked, so a daemon
    /// started with it could never see the SIGTERM that systemd sends.
    final class Child {
        let pid: pid_t
        private(set) var exitStatus: Int32?

        init(_ arguments: [String], environment: [String: String], quiet: Bool = true) throws {
            var attributes = posix_spawnattr_t()
            posix_spawnattr_init(&attributes)
            defer { posix_spawnattr_destroy(&attributes) }
            var empty = sigset_t()
            sigemptyset(&empty)
            var all = sigset_t()
            sigfillset(&all)
            posix_spawnattr_setsigmask(&attributes, &empty)
            posix_spawnattr_setsigdefault(&attributes, &all)
            posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

            var actions = posix_spawn_file_actions_t()
            posix_spawn_file_actions_init(&actions)
            defer { posix_spawn_file_actions_destroy(&actions) }
            if quiet {
                posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
                posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
            }

            let argv = arguments.map { strdup($0) }
            let envp = environment.map { strdup("\($0.key)=\($0.value)") }
            defer {
                argv.forEach { free($0) }
                envp.forEach { free($0) }
            }
            var child: pid_t = 0
            let result = (argv + [nil]).withUnsafeBufferPointer { argvBuffer -> Int32 in
                (envp + [nil]).withUnsafeBufferPointer { envBuffer -> Int32 in
                    guard let argvBase = argvBuffer.baseAddress, let envBase = envBuffer.baseAddress else { return EINVAL }
                    return posix_spawn(&child, arguments[0], &actions, &attributes, argvBase, envBase)
                }
            }
            guard result == 0 else { throw Failure("posix_spawn \(arguments[0]): error \(result)") }
            pid = child
        }

        var isRunning: Bool {
            if exitStatus != nil { return false }
            var status: Int32 = 0
            let reaped = waitpid(pid, &status, WNOHANG)
            guard reaped == pid else { return reaped == 0 }
            // Exit code, or 128 + signal number as a shell reports it.
            let signal = status & 0x7f
            exitStatus = signal == 0 ? (status >> 8) & 0xff : 128 + signal
            return false
        }

        func signal(_ number: Int32) { if isRunning { kill(pid, number) } }

        /// Waits at most `timeout` for the child to exit; kills it (SIGKILL) and returns nil when it does not.
        func waitForExit(timeout: Duration) -> Int32? {
            let deadline = ContinuousClock.now + timeout
            while isRunning && ContinuousClock.now < deadline { usleep(20_000) }
            guard isRunning else { return exitStatus }
            kill(pid, SIGKILL)
            while isRunning { usleep(5_000) }
            return nil
        }

        deinit {
            if isRunning {
                kill(pid, SIGKILL)
                while isRunning { usleep(5_000) }
            }
        }
    }

    /// Runs a command to completion and returns its exit status and combined output.
    @discardableResult
    static func run(_ arguments: [String], environment: [String: String]? = nil, directory: String? = nil) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        if let environment { process.environment = environment }
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: output, as: UTF8.self))
    }

}
