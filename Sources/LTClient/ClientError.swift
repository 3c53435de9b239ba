#if canImport(Glibc)
import Glibc
#endif
import LTProtocol

/// Everything that can go wrong talking to ltd. Each description says what happened, where, and what to do next.
public enum ClientError: Error, CustomStringConvertible, Sendable {
    /// `sockaddr_un.sun_path` holds at most 107 bytes; the kernel would silently truncate a longer path.
    case socketPathTooLong(path: String, limit: Int)
    /// connect(2) failed: nothing listens there, the directory is missing, or the socket's mode keeps us out.
    case cannotConnect(path: String, errno: Int32)
    /// The process listening on the socket runs as `uid`, which is neither the caller, root, nor the service user:
    /// not a daemon to trust with requests or their answers.
    case untrustedDaemon(path: String, uid: UInt32, user: String?)
        /// The daemon closed the connection while a reply or event was still expected.
    case connectionClosed(path: String)
    /// A read or write on the socket failed.
    case io(path: String, operation: String, errno: Int32)
    /// The daemon sent something that is not protocol v1 (not JSON, or a reply of the wrong shape).
    case protocolViolation(path: String, detail: String)
    /// The daemon answered with an `error` line; `message` is the daemon's own, which already says what to do.
    case daemon(code: String, message: String, field: String?, owner: Int?)
    /// Our stdout was closed (e.g. `ltctl tail job | head`); not an error worth a message.
    case outputClosed
    /// `--host` / `LTD_HOST` is not an address ltctl can use.
    case badHost(String, reason: String)
    /// The program that reaches a remote daemon (ssh) could not be started.
    case cannotStart(command: String, errno: Int32)
    /// The connection through ssh ended; `status` is ssh's exit status (255: ssh itself failed; otherwise the
    /// remote `ltctl dial-stdio`'s, e.g. 69 when no daemon answers there).
    case transportEnded(endpoint: String, command: String, status: Int32?)
    /// The daemon is older than a feature this client was asked to use: its hello lists no such capability.
    case missingCapability(endpoint: String, capability: String, feature: String, daemonVersion: String)

    /// The wire error code, when the daemon sent one.
    public var daemonCode: ErrorCode? {
        if case .daemon(let code, _, _, _) = self { return ErrorCode(rawValue: code) }
        return nil
    }

    public var description: String {
        switch self {
        case .socketPathTooLong(let path, let limit):
            return "socket path \(path) is \(path.utf8.count) bytes; Unix sockets allow at most \(limit). Use a shorter --socket path."
        case .cannotConnect(let path, let code):
            let reason = String(cString: strerror(code))
            let start = "Start it with `systemctl start ltd` (system service) or `ltd &` (your own daemon), or point --socket / LTD_SOCKET at a running one."
            switch code {
            case ENOENT:
                return "cannot reach ltd at \(path): no socket there (\(reason)). The daemon is not running. \(start)"
            case ECONNREFUSED:
                return "cannot reach ltd at \(path): connection refused; the socket file is stale and no daemon listens on it. \(start)"
            case EACCES, EPERM:
                return "cannot reach ltd at \(path): permission denied. The system daemon's socket is group `ltd` (mode 0660): "
                    + "ask an administrator to add you (`usermod -aG ltd $USER`, then log in again), or run your own daemon with `ltd &`."
            default:
                return "cannot reach ltd at \(path): \(reason). \(start)"
            }
        case .untrustedDaemon(let path, let uid, let user):
            return "the process listening on \(path) runs as \(ProcessIdentity.describe(uid: uid, user: user)), not as you (uid \(geteuid())), root or the \(ProcessIdentity.serviceUser) service user: it is not a daemon ltctl trusts. Check who made that socket (ls -l \(path)), or point --socket / LTD_SOCKET at your own ltd"
        case .connectionClosed(let path):
            return "ltd at \(path) closed the connection unexpectedly (did the daemon stop? check `systemctl status ltd` or its log)."
        case .io(let path, let operation, let code):
            return "\(operation) on \(path) failed: \(String(cString: strerror(code)))"
        case .protocolViolation(let path, let detail):
            return "ltd at \(path) sent something ltctl does not understand (\(detail)); are ltd and ltctl the same version?"
        case .daemon(_, let message, _, _):
            return message
        case .outputClosed:
            return "output closed"
        case .badHost(let text, let reason):
            return "cannot use host \"\(text)\": \(reason)"
        case .cannotStart(let command, let code):
            return "cannot run `\(command)`: \(String(cString: strerror(code))); install an ssh client, or set LTD_SSH to one"
        case .transportEnded(let endpoint, let command, let status):
            switch status {
            case 255?:
                return "ssh could not reach \(endpoint) (its message is above); check the host, the user and your key: `\(command)`"
            case 127?:
                return "\(endpoint): the remote shell found no ltctl; install ltd there, or set LTD_REMOTE_LTCTL to its ltctl"
            case let code? where code != 0:
                return "\(endpoint): the remote ltctl dial-stdio ended with status \(code) (its message is above)"
            default:
                return "the connection to \(endpoint) ended unexpectedly (`\(command)`); did the remote daemon stop?"
            }
        case .missingCapability(let endpoint, let capability, let feature, let daemonVersion):
            return "ltd at \(endpoint) is version \(daemonVersion), which cannot \(feature) (its hello lists no "
                + "\"\(capability)\" capability); upgrade that daemon to ltd \(DefaultPaths.daemonVersion), this client's version, or newer"
        }
    }
}
