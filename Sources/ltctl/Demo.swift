import ArgumentParser
import Foundation
import LTData
import LTClient
import LTProtocol

extension LTCtl {
    struct Demo: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Watch the classic twelve-point job (epochs 4, batch 4) train, paced for a person.",
            discussion: """
            Starts `--example colab` under a unique name (demo-<time>-<pid>) with --pace (default 300ms) and tails it. \
            If no daemon answers at the socket, starts a private one (the `ltd` next to this ltctl, with its socket and \
            state under a fresh temporary directory) and stops it afterwards. Then try: ltctl compare <name>.
            """)

        @OptionGroup var connection: ConnectionOptions
        @Option(help: ArgumentHelp("Sleep between steps, e.g. 300ms or 1s.", valueName: "duration")) var pace = "300ms"
        @Option(help: ArgumentHelp("The ltd binary for a private daemon (default: next to ltctl, else on PATH).", valueName: "path"),
                completion: .file())
        var ltd: String?
        @Flag(help: "Print the daemon's event lines instead of the human format.") var json = false

        func validate() throws { _ = try SpecOptions.milliseconds(pace) }

        func run() throws {
            try runReportingErrors {
                var socketPath = connection.socketPath
                var privateDaemon: PrivateDaemon?
                if (try? Connection(socketPath: socketPath).hello()) == nil {
                    let daemon = try PrivateDaemon.launch(binary: ltd)
                    FileHandle.standardError.write(Data("ltctl: no daemon at \(socketPath); started a private one (pid \(daemon.pid), socket \(daemon.socketPath))\n".utf8))
                    socketPath = daemon.socketPath
                    privateDaemon = daemon
                }
                defer { privateDaemon?.stop() }
                let name = Self.uniqueName()
                let spec = Points.colab.json
                let conn = try Connection(socketPath: socketPath)
                try conn.request("start", [("job", .string(name)), ("spec", .object([
                    ("data", spec),
                    ("init", .object([("kernel", JSONValue(0.5)), ("bias", JSONValue(0))])),
                    ("optimizer", .object([("name", .string("rmsprop")), ("learning_rate", JSONValue(0.05))])),
                    ("epochs", JSONValue(4)), ("batch_size", JSONValue(4)), ("shuffle", .bool(false)),
                    ("pace_ms", JSONValue(try SpecOptions.milliseconds(pace))),
                ]))])
                let status = try Tailer(connection: conn, job: name, options: TailSettings(json: json)).run()
                if !json {
                    // The question the demo exists for, answered with this run's own figures.
                    let history = try JobHistory.read(job: name, from: try Connection(socketPath: socketPath), types: [.start, .step, .epoch])
                    let out = BufferedOutput(fd: STDOUT_FILENO)
                    try out.write("\n" + Palette(fd: STDOUT_FILENO).bold("Why Keras's RMSE is not the RMSE of the final model") + "\n")
                    for sentence in Comparison(job: name, history: history).explanation { try out.write("- " + sentence + "\n") }
                    try out.write(privateDaemon == nil
                        ? "\nEvery figure: ltctl compare \(name); one step by hand: ltctl explain \(name) --iteration 5\n"
                        : "\n(The private daemon stops now. Run `ltd &` to keep jobs, then try `ltctl compare` and `ltctl explain`.)\n")
                    try out.flush()
                }
                return status
            }
        }

        static func uniqueName() -> String {
            var now = timespec()
            clock_gettime(CLOCK_REALTIME, &now)
            return "demo-\(now.tv_sec)-\(getpid())"
        }
    }
}

/// A private `ltd` for `demo`: socket and state in a fresh temporary directory, stopped (SIGTERM) and removed after.
final class PrivateDaemon {
    let pid: pid_t
    let directory: String
    var socketPath: String { directory + "/ltd.sock" }

    private init(pid: pid_t, directory: String) {
        self.pid = pid
        self.directory = directory
    }

    /// The `ltd` next to our own executable, else the first on PATH.
    static func findBinary() -> String? {
        if let own = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            let sibling = (own as NSString).deletingLastPathComponent + "/ltd"
            if FileManager.default.isExecutableFile(atPath: sibling) { return sibling }
        }
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") {
            let candidate = "\(dir)/ltd"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    static func launch(binary: String?) throws -> PrivateDaemon {
        guard let path = binary ?? findBinary() else {
            throw InputError("no daemon is running and no `ltd` binary was found next to ltctl or on PATH; start one with `ltd &` or pass --ltd PATH")
        }
        let base = ProcessInfo.processInfo.environment["XDG_RUNTIME_DIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
        var template = Array("\(base)/ltctl-demo-XXXXXX".utf8CString)
        let made: String? = template.withUnsafeMutableBufferPointer { buffer in
            guard let base = buffer.baseAddress, let result = mkdtemp(base) else { return nil }
            return String(cString: result)
        }
        guard let directory = made else { throw InputError("cannot create a temporary directory under \(base)") }
        let arguments = [path, "--socket", directory + "/ltd.sock", "--state-dir", directory + "/state", "--log-level", "warning"]
        var pid: pid_t = 0
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        // A clean signal state for the daemon: no blocked signals (we may run under a runner that blocks them) and
        // SIGPIPE back to its default (ltctl ignores it, and ignored signals survive exec).
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var signals = sigset_t()
        sigemptyset(&signals)
        posix_spawnattr_setsigmask(&attributes, &signals)
        sigaddset(&signals, SIGPIPE)
        posix_spawnattr_setsigdefault(&attributes, &signals)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let result = posix_spawn(&pid, path, nil, &attributes, &argv, environ)
        guard result == 0 else {
            try? FileManager.default.removeItem(atPath: directory)
            throw InputError("cannot start \(path): \(String(cString: strerror(result)))")
        }
        let daemon = PrivateDaemon(pid: pid, directory: directory)
        // Wait (up to 10 s) until it answers hello.
        for _ in 0..<200 {
            if (try? Connection(socketPath: daemon.socketPath).hello()) != nil { return daemon }
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid {
                try? FileManager.default.removeItem(atPath: directory)
                throw InputError("the private daemon \(path) exited during start-up (status \(status))")
            }
            usleep(50_000)
        }
        daemon.stop()
        throw InputError("the private daemon \(path) did not answer on \(daemon.socketPath) within 10 s")
    }

    func stop() {
        kill(pid, SIGTERM)
        var status: Int32 = 0
        for _ in 0..<100 {
            if waitpid(pid, &status, WNOHANG) == pid { break }
            usleep(50_000)
        }
        if waitpid(pid, &status, WNOHANG) == 0 {
            kill(pid, SIGKILL)
            waitpid(pid, &status, 0)
        }
        try? FileManager.default.removeItem(atPath: directory)
    }
}
