#if canImport(Glibc)
import Glibc
#endif

/// Where ltd is: a Unix socket on this machine, or a socket on another machine reached through ssh, as Docker's
/// `DOCKER_HOST=ssh://user@host` reaches a remote dockerd. ltd itself has no network code: over ssh, the remote
/// `ltctl dial-stdio` connects to the remote daemon's socket as the ssh login user, and relays bytes.
public enum Endpoint: Sendable, Equatable, CustomStringConvertible {
    case socket(String)
    case ssh(SSHTarget)

    /// `ssh://[user@]host[:port][/remote/socket/path]`, or `unix:///path/to/ltd.sock`.
    public static func parse(host text: String) throws -> Endpoint {
        if text.hasPrefix("unix://") {
            let path = String(text.dropFirst("unix://".count))
            guard path.hasPrefix("/") else { throw ClientError.badHost(text, reason: "a unix:// address needs an absolute path, e.g. unix:///run/ltd/ltd.sock") }
            return .socket(path)
        }
        guard text.hasPrefix("ssh://") else {
            throw ClientError.badHost(text, reason: "use ssh://user@host[:port] (or unix:///path/to/ltd.sock)")
        }
        var rest = Substring(text.dropFirst("ssh://".count))
        var remoteSocket: String?
        if let slash = rest.firstIndex(of: "/") {
            remoteSocket = String(rest[slash...])
            rest = rest[..<slash]
        }
        var user: String?
        if let at = rest.lastIndex(of: "@") {
            user = String(rest[..<at])
            rest = rest[rest.index(after: at)...]
        }
        var port: Int?
        if let colon = rest.lastIndex(of: ":"), !rest.hasPrefix("[") || rest[..<colon].hasSuffix("]") {
            guard let number = Int(rest[rest.index(after: colon)...]), (1...65535).contains(number) else {
                throw ClientError.badHost(text, reason: "the port must be a number in 1-65535")
            }
            port = number
            rest = rest[..<colon]
        }
        let host = String(rest)
        // Each part reaches ssh's command line: refuse what could be read as an option or a second argument.
        let safe = { (s: String) in !s.isEmpty && !s.hasPrefix("-") && !s.contains(where: { $0.isWhitespace || $0 == "'" }) }
        guard safe(host), user.map(safe) ?? true, remoteSocket.map(safe) ?? true else {
            throw ClientError.badHost(text, reason: "the user, host and socket path may not be empty, start with '-', or hold spaces or quotes")
        }
        return .ssh(SSHTarget(user: user, host: host, port: port, remoteSocket: remoteSocket))
    }

    public var description: String {
        switch self {
        case .socket(let path): path
        case .ssh(let target): target.description
        }
    }
}

/// A remote daemon behind ssh.
public struct SSHTarget: Sendable, Equatable, CustomStringConvertible {
    public var user: String?
    public var host: String
    public var port: Int?
    /// The daemon's socket on that machine; nil lets the remote ltctl choose, as it would for a local command.
    public var remoteSocket: String?

    public var description: String {
        "ssh://" + (user.map { $0 + "@" } ?? "") + host + (port.map { ":\($0)" } ?? "") + (remoteSocket ?? "")
    }

    /// The command that reaches the daemon: `ssh [-p PORT] [user@]host -- ltctl dial-stdio [--socket PATH]`.
    /// `ssh` is `$LTD_SSH` split on spaces (default `ssh`, as git's GIT_SSH_COMMAND); the remote ltctl is
    /// `$LTD_REMOTE_LTCTL` (default `ltctl`, found on the remote PATH).
    public func command(environment: [String: String]) -> [String] {
        var ssh = (environment["LTD_SSH"] ?? "ssh").split(whereSeparator: \.isWhitespace).map(String.init)
        if ssh.isEmpty { ssh = ["ssh"] }
        if let port { ssh += ["-p", String(port)] }
        ssh.append((user.map { $0 + "@" } ?? "") + host)
        let remote = environment["LTD_REMOTE_LTCTL"].flatMap { $0.isEmpty ? nil : $0 } ?? "ltctl"
        ssh += ["--", "'" + remote + "'", "dial-stdio"]
        if let remoteSocket { ssh += ["--socket", "'" + remoteSocket + "'"] }
        return ssh
    }
}

extension Connection {
    /// Connects to `endpoint`: a Unix socket, or ssh running `ltctl dial-stdio` on the far side, whose standard
    /// input and output are one end of a socket pair (so the connection is a socket either way).
    public convenience init(endpoint: Endpoint, environment: [String: String]) throws {
        switch endpoint {
        case .socket(let path):
            try self.init(socketPath: path)
        case .ssh(let target):
            let command = target.command(environment: environment)
            var ends: [Int32] = [0, 0]
            guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &ends) == 0 else {
                throw ClientError.io(path: target.description, operation: "socketpair", errno: errno)
            }
            let pid: pid_t
            do {
                pid = try spawn(command, stdinAndStdout: ends[1])
            } catch {
                close(ends[0]); close(ends[1])
                throw error
            }
            close(ends[1])
            self.init(fd: ends[0], name: target.description, transport: Transport(pid: pid, command: command))
        }
    }
}

/// Starts `command` (searched in PATH) with `fd` as its standard input and output; its stderr stays ours, so ssh's
/// own messages (a host key prompt, an authentication failure) reach the user.
private func spawn(_ command: [String], stdinAndStdout fd: Int32) throws -> pid_t {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_adddup2(&actions, fd, 0)
    posix_spawn_file_actions_adddup2(&actions, fd, 1)
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    var empty = sigset_t()
    sigemptyset(&empty)
    posix_spawnattr_setsigmask(&attributes, &empty)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK))
    var pid: pid_t = 0
    let argv: [UnsafeMutablePointer<CChar>?] = command.map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    let result = posix_spawnp(&pid, command[0], &actions, &attributes, argv, environ)
    guard result == 0 else {
        throw ClientError.cannotStart(command: command.joined(separator: " "), errno: result)
    }
    return pid
}

/// The process a connection goes through (ssh), reaped when the connection closes.
struct Transport: Sendable {
    let pid: pid_t
    let command: [String]

    /// The exit status once the process has ended: its exit code, or 128 + the signal.
    func exitStatus(wait: Bool) -> Int32? {
        var status: Int32 = 0
        let result = waitpid(pid, &status, wait ? 0 : WNOHANG)
        guard result == pid else { return nil }
        if status & 0x7f == 0 { return (status >> 8) & 0xff }
        return 128 + (status & 0x7f)
    }
}
