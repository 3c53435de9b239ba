#if canImport(Glibc)
import Glibc
// With CLibUV in the module, clang attributes the socket constants (SOCK_STREAM, …) to it rather than Glibc.
import CLibUV
#endif
import LTProtocol

/// Talks to the service manager through `$NOTIFY_SOCKET`, as `sd_notify(3)` does: each message is one datagram
/// on an `AF_UNIX`/`SOCK_DGRAM` socket. Written by hand because the protocol is a few lines and libsystemd would
/// be a run-time dependency for nothing. A leading `@` in the address names the abstract namespace.
///
/// Messages ltd sends: `READY=1` once it accepts connections, `STATUS=…`, `STOPPING=1` on shutdown and
/// `WATCHDOG=1` at `watchdogInterval(environment:)`.
public struct SystemdNotifier: Sendable {
    private let destination: UnixSocketAddress

    /// The socket address as given in `NOTIFY_SOCKET`, for logs.
    public let address: String

    /// Returns nil when `NOTIFY_SOCKET` is unset, empty, not a Unix socket address, or too long for `sun_path`.
    public init?(environment: [String: String]) {
        guard let address = environment["NOTIFY_SOCKET"], !address.isEmpty else { return nil }
        // systemd ≥ 254 also knows `vsock:` addresses; ltd runs on the host, where those are never used.
        guard address.hasPrefix("/") || address.hasPrefix("@"),
              let destination = UnixSocketAddress(address, allowAbstract: true) else { return nil }
        self.destination = destination
        self.address = address
    }

    /// Sends one notification, for example `"READY=1"` or `"STATUS=2 jobs, 1 subscriber"`. Several assignments
    /// may be joined with newlines. Returns false when the datagram could not be sent; the service manager then
    /// simply does not learn of it, which must never stop the daemon, so most callers ignore the result.
    @discardableResult
    public func send(_ message: String) -> Bool {
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }

        let payload = Array(message.utf8)
        let sent = payload.withUnsafeBytes { body in
            destination.withSockaddr { address, length in
                sendto(fd, body.baseAddress, body.count, Int32(MSG_NOSIGNAL), address, length)
            }
        }
        return sent == payload.count
    }

    /// How often to send `WATCHDOG=1`: half of `WATCHDOG_USEC`, as sd_watchdog_enabled(3) recommends. Nil when
    /// the watchdog is off, malformed, or meant for another process (`WATCHDOG_PID` set and not ours).
    public static func watchdogInterval(environment: [String: String], pid: pid_t = getpid()) -> Duration? {
        guard let text = environment["WATCHDOG_USEC"], let usec = UInt64(text), usec > 0 else { return nil }
        if let owner = environment["WATCHDOG_PID"], !owner.isEmpty {
            guard let ownerPID = pid_t(owner), ownerPID == pid else { return nil }
        }
        let half = usec / 2
        guard half > 0, half <= UInt64(Int64.max) else { return nil }
        return .microseconds(Int64(half))
    }
}
