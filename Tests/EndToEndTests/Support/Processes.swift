import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A child started the way systemd starts a service: every signal unblocked and at its default disposition.
/// Foundation's `Process` passes on the test runner's signal mask, in which SIGTERM is blocked, so a daemon started
/// with it might never see a SIGTERM, and a tmux server started by its first client would miss SIGCHLD.
final class ChildProcess {
    /// Where one of the child's standard streams goes.
    enum Stream {
        case null
        case inherited
        /// A file, created if missing (mode 0600); appended to or truncated.
        case file(String, append: Bool)
        /// A descriptor of ours, duplicated onto the stream.
        case descriptor(Int32)
        /// No descriptor at all: the child starts with that number free.
        case closed
    }

    let pid: pid_t
    /// The exit code, or 128 + the signal number as a shell reports it; nil while the child runs.
    private(set) var exitStatus: Int32?

    /// Starts `arguments[0]` (searched in PATH when it has no slash). `environment` nil passes on ours.
    init(_ arguments: [String], environment: [String: String]? = nil,
         stdin: Stream = .null, stdout: Stream = .null, stderr: Stream = .null) throws {
        guard let executable = arguments.first else { throw HarnessFailure("nothing to start") }
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
        for (target, stream) in [(Int32(0), stdin), (1, stdout), (2, stderr)] {
            switch stream {
            case .null: posix_spawn_file_actions_addopen(&actions, target, "/dev/null", target == 0 ? O_RDONLY : O_WRONLY, 0)
            case .inherited: break
            case .file(let path, let append):
                posix_spawn_file_actions_addopen(&actions, target, path, O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC), 0o600)
            case .descriptor(let fd): posix_spawn_file_actions_adddup2(&actions, fd, target)
            case .closed: posix_spawn_file_actions_addclose(&actions, target)
            }
        }

        let argv = arguments.map { strdup($0) }
        let envp = environment.map { $0.map { strdup("\($0.key)=\($0.value)") } }
        defer {
            argv.forEach { free($0) }
            envp?.forEach { free($0) }
        }
        var child: pid_t = 0
        let result = (argv + [nil]).withUnsafeBufferPointer { argvBuffer -> Int32 in
            guard let argvBase = argvBuffer.baseAddress else { return EINVAL }
            guard let envp else { return posix_spawnp(&child, executable, &actions, &attributes, argvBase, environ) }
            return (envp + [nil]).withUnsafeBufferPointer { envBuffer -> Int32 in
                guard let envBase = envBuffer.baseAddress else { return EINVAL }
                return posix_spawnp(&child, executable, &actions, &attributes, argvBase, envBase)
            }
        }
        guard result == 0 else { throw HarnessFailure("cannot start \(executable): \(String(cString: strerror(result)))") }
        pid = child
    }

    var isRunning: Bool {
        if exitStatus != nil { return false }
        var status: Int32 = 0
        let reaped = waitpid(pid, &status, WNOHANG)
        guard reaped == pid else { return reaped == 0 }
        // WEXITSTATUS and WTERMSIG, spelled out: Glibc's macros are not imported into Swift.
        let signal = status & 0x7f
        exitStatus = signal == 0 ? (status >> 8) & 0xff : 128 + signal
        return false
    }

    /// Sends `number` unless the child is gone (its pid may belong to someone else by then).
    func signal(_ number: Int32) { if isRunning { kill(pid, number) } }

    /// Waits for the child to exit and returns its status; after `timeout` kills it (SIGKILL) and throws.
    @discardableResult
    func waitForExit(timeout: Duration = .seconds(30)) throws -> Int32 {
        let deadline = ContinuousClock.now + timeout
        while isRunning && ContinuousClock.now < deadline { usleep(5_000) }
        if let exitStatus { return exitStatus }
        killAndReap()
        throw HarnessFailure("\(pid) did not exit within \(timeout)")
    }

    /// SIGKILL, then reaps, so no zombie or stray process outlives a test.
    func killAndReap() {
        guard isRunning else { return }
        kill(pid, SIGKILL)
        while isRunning { usleep(5_000) }
    }

    deinit { killAndReap() }
}

/// What a command that ran to completion left behind.
struct CommandResult {
    var status: Int32
    var stdoutBytes: Data
    var stderrBytes: Data
    var stdout: String { String(decoding: stdoutBytes, as: UTF8.self) }
    var stderr: String { String(decoding: stderrBytes, as: UTF8.self) }
}

/// Runs a command to completion and captures its output: one way for every test.
enum Command {
    /// Whether stderr is captured on its own or interleaved into stdout, as a terminal would show it.
    enum ErrorOutput { case separate, intoStdout }

    /// Runs `arguments` (see `ChildProcess`) with `stdin` as its input (none when nil). After `timeout` the command
    /// gets SIGTERM, and its status then says so.
    @discardableResult
    static func run(_ arguments: [String], environment: [String: String]? = nil, stdin: Data? = nil,
                    stderr errorOutput: ErrorOutput = .separate, timeout: Duration = .seconds(60)) throws -> CommandResult {
        var output = try pipeEnds(), errors = try pipeEnds()
        defer { [output.read, output.write, errors.read, errors.write].forEach { if $0 >= 0 { close($0) } } }
        // The input comes from an unlinked file, so a command that never reads it cannot block us or raise SIGPIPE.
        let input = try stdin.map(inputFile)
        defer { if let input { close(input) } }
        let child = try ChildProcess(arguments, environment: environment,
                                     stdin: input.map { .descriptor($0) } ?? .null,
                                     stdout: .descriptor(output.write),
                                     stderr: .descriptor(errorOutput == .separate ? errors.write : output.write))
        close(output.write)
        close(errors.write)
        output.write = -1
        errors.write = -1

        // Read both pipes together, so a chatty child never blocks on a full one.
        var collected: [Int32: Data] = [output.read: Data(), errors.read: Data()]
        var open = [output.read, errors.read]
        let deadline = ContinuousClock.now + timeout
        var terminated = false
        while !open.isEmpty {
            if !terminated && ContinuousClock.now >= deadline {
                child.signal(SIGTERM)
                terminated = true
            }
            // Something the command started may hold the pipes open; stop listening to it.
            if ContinuousClock.now >= deadline + .seconds(10) {
                child.killAndReap()
                break
            }
            var descriptors = open.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            let ready = poll(&descriptors, nfds_t(descriptors.count), 100)
            if ready < 0 && errno != EINTR { throw HarnessFailure("poll: errno \(errno)") }
            for descriptor in descriptors where descriptor.revents != 0 {
                var chunk = [UInt8](repeating: 0, count: 65536)
                let count = chunk.withUnsafeMutableBytes { read(descriptor.fd, $0.baseAddress, $0.count) }
                if count < 0 && errno == EINTR { continue }
                if count <= 0 { open.removeAll { $0 == descriptor.fd }; continue }
                collected[descriptor.fd, default: Data()].append(contentsOf: chunk[0..<count])
            }
        }
        let status = try child.waitForExit(timeout: .seconds(30))
        return CommandResult(status: status, stdoutBytes: collected[output.read] ?? Data(), stderrBytes: collected[errors.read] ?? Data())
    }

    private static func pipeEnds() throws -> (read: Int32, write: Int32) {
        var ends: [Int32] = [-1, -1]
        guard pipe(&ends) == 0 else { throw HarnessFailure("pipe: errno \(errno)") }
        // Close-on-exec, so no other child holds our ends open (pipe2 is not imported into Swift).
        for end in ends { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
        return (ends[0], ends[1])
    }

    private static func inputFile(_ data: Data) throws -> Int32 {
        var template = Array("/tmp/ltd-stdin-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { buffer -> Int32 in
            guard let base = buffer.baseAddress else { return -1 }
            let fd = mkstemp(base)
            if fd >= 0 {
                unlink(base)
                _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            }
            return fd
        }
        guard fd >= 0 else { throw HarnessFailure("mkstemp: errno \(errno)") }
        let bytes = [UInt8](data)
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else { close(fd); throw HarnessFailure("writing stdin: errno \(errno)") }
            offset += written
        }
        lseek(fd, 0, SEEK_SET)
        return fd
    }
}
