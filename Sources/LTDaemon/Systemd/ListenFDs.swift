#if canImport(Glibc)
import Glibc
// With CLibUV in the module, clang attributes the socket constants (SOCK_STREAM, …) to it rather than Glibc.
import CLibUV
#endif

/// Sockets handed over by socket activation (`sd_listen_fds(3)`): systemd, or `systemd-socket-activate`, passes
/// them as fds 3, 4, … and sets `LISTEN_PID` to our pid and `LISTEN_FDS` to their number. A socket received this
/// way belongs to the socket unit: the daemon must never unlink its path.
public enum ListenFDs {
    /// The first passed descriptor, `SD_LISTEN_FDS_START`.
    public static let start: Int32 = 3

    /// More than this is not a socket unit's doing but a corrupt environment; refuse rather than touch random fds.
    public static let maximumCount = 64

    /// A passed descriptor and its name from `LISTEN_FDNAMES` (`FileDescriptorName=`; "unknown" when unnamed).
    public struct Named: Sendable, Equatable {
        public let fd: Int32
        public let name: String
        public init(fd: Int32, name: String) {
            self.fd = fd
            self.name = name
        }
    }

    /// Takes the passed descriptors: returns `[3, …]` when `LISTEN_PID` is this process and `LISTEN_FDS` ≥ 1, else
    /// `[]`. In every case it unsets `LISTEN_PID`, `LISTEN_FDS` and `LISTEN_FDNAMES`, so that nothing we start
    /// believes the sockets are its own, and marks the descriptors close-on-exec. Call once, early, before any
    /// other thread reads the environment.
    public static func take() -> [Int32] {
        takeNamed().map(\.fd)
    }

    /// As `take()`, with the names from `LISTEN_FDNAMES`.
    public static func takeNamed() -> [Named] {
        var environment: [String: String] = [:]
        for key in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
            if let value = getenv(key) { environment[key] = String(cString: value) }
            unsetenv(key)
        }
        let passed = parse(environment: environment, pid: getpid())
        for descriptor in passed {
            let flags = fcntl(descriptor.fd, F_GETFD)
            if flags >= 0 { _ = fcntl(descriptor.fd, F_SETFD, flags | FD_CLOEXEC) }
        }
        return passed
    }

    /// The descriptors an environment hands to process `pid`, without touching the process. Malformed values,
    /// another process's `LISTEN_PID`, zero or too many fds all give `[]`. Names beyond the count are ignored;
    /// missing names are "unknown", as in libsystemd.
    public static func parse(environment: [String: String], pid: pid_t) -> [Named] {
        guard let pidText = environment["LISTEN_PID"], let listenPID = pid_t(pidText), listenPID == pid else { return [] }
        guard let countText = environment["LISTEN_FDS"], let count = Int(countText),
              count >= 1, count <= maximumCount
        else { return [] }
        let names = (environment["LISTEN_FDNAMES"] ?? "").split(separator: ":", omittingEmptySubsequences: false)
        return (0..<count).map { index in
            let name = index < names.count && !names[index].isEmpty ? String(names[index]) : "unknown"
            return Named(fd: start + Int32(index), name: name)
        }
    }

    /// True when `fd` is a listening `AF_UNIX` stream socket, the only kind ltd can serve. Lets the daemon refuse a
    /// wrongly configured socket unit (say `ListenDatagram=` or a TCP port) with a clear message.
    public static func isListeningUnixStream(_ fd: Int32) -> Bool {
        var type: Int32 = 0
        var listening: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &length) == 0, type == Int32(SOCK_STREAM.rawValue) else { return false }
        length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &length) == 0, listening == 1 else { return false }
        var address = sockaddr_storage()
        length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let named = withUnsafeMutablePointer(to: &address) { storage in
            storage.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return named == 0 && address.ss_family == sa_family_t(AF_UNIX)
    }
}
