#if canImport(Glibc)
import Glibc
#endif
import CLibUV
import LTProtocol

/// Why the daemon could not start, in words a person can act on.
public struct StartupError: Error, CustomStringConvertible {
    public let message: String
    /// What ltd exits with: 1, or `newerStateFormatExitCode`.
    public let exitCode: Int32
    public init(_ message: String, exitCode: Int32 = 1) { self.message = message; self.exitCode = exitCode }
    public var description: String { message }

    /// The state directory was written by a newer ltd (its format version is higher than this one reads): a
    /// restart cannot help, so systemd is told not to try (`RestartPreventExitStatus=`). EX_DATAERR of sysexits.h.
    public static let newerStateFormatExitCode: Int32 = 65
}

/// Preparing the listening socket's path, as tmux does: refuse a path `sun_path` cannot hold (libuv 1.44 would
/// silently truncate it), create a missing directory 0700, refuse to start when a live daemon answers, and replace
/// a stale socket left by one that died.
enum SocketPath {
    enum Probe: Equatable { case absent, live, stale, notSocket }

    static func checkLength(_ path: String) throws(StartupError) {
        let capacity = UnixSocketAddress.pathCapacity
        let length = path.utf8.count
        guard length > 0 else { throw StartupError("the socket path is empty; pass --socket PATH") }
        guard length < capacity else {
            throw StartupError("socket path is \(length) bytes, but a Unix socket path must be shorter than \(capacity) bytes: \(path). Choose a shorter --socket path (or LTD_SOCKET)")
        }
    }

    /// Creates the socket's directory with mode 0700 when it does not exist; refuses the /tmp fallback unless it is
    /// ours alone.
    static func prepareDirectory(of path: String) throws(StartupError) {
        guard let slash = path.lastIndex(of: "/") else { return }
        let directory = String(path[..<slash])
        guard !directory.isEmpty else { return }
        if !FileIO.exists(directory) {
            do { try FileIO.makeDirectories(directory, mode: 0o700) } catch {
                throw StartupError("cannot create the socket directory: \(error)")
            }
            Log.info("created socket directory \(directory) (mode 0700)")
        }
        if directory == DefaultPaths.temporarySocketDirectory(uid: geteuid()) { try checkPrivate(directory) }
    }

    /// The `/tmp/ltd-UID` fallback may have been made by anyone, who could then swap the socket: ltd uses it only
    /// if it is a real directory (not a link) of its own uid, mode 0700. A directory named with --socket is the
    /// caller's own choice and is not checked.
    static func checkPrivate(_ directory: String) throws(StartupError) {
        var info = stat()
        guard lstat(directory, &info) == 0 else { throw StartupError("cannot inspect \(directory): \(errnoText(errno))") }
        guard info.st_mode & S_IFMT == S_IFDIR, info.st_uid == geteuid(), info.st_mode & 0o077 == 0 else {
            throw StartupError("\(directory) is in the world-writable /tmp but is not a directory of uid \(geteuid()) with mode 0700 (owner uid \(info.st_uid), mode \(String(info.st_mode & 0o7777, radix: 8))); someone else may control it. Remove it, or set XDG_RUNTIME_DIR or --socket to a private place")
        }
    }

    /// What is at `path` now: nothing, a socket a process listens on, a socket nobody listens on, or something else.
    static func probe(_ path: String) throws(StartupError) -> Probe {
        var info = stat()
        if lstat(path, &info) != 0 {
            if errno == ENOENT { return .absent }
            throw StartupError("cannot inspect \(path): \(errnoText(errno))")
        }
        guard (info.st_mode & S_IFMT) == S_IFSOCK else { return .notSocket }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw StartupError("socket(): \(errnoText(errno))") }
        defer { close(fd) }
        guard let address = UnixSocketAddress(path) else { throw StartupError("socket path too long: \(path)") }
        let connected = address.withSockaddr { connect(fd, $0, $1) }
        if connected == 0 { return .live }
        switch errno {
        case ECONNREFUSED: return .stale
        case ENOENT: return .absent
        default: throw StartupError("cannot check whether a daemon listens on \(path): \(errnoText(errno))")
        }
    }

    /// Makes `path` free to bind: refuses a live socket or a non-socket file, removes a stale socket.
    static func claim(_ path: String) throws(StartupError) {
        switch try probe(path) {
        case .absent:
            return
        case .live:
            throw StartupError("another ltd is already listening on \(path); stop it first (ltctl hello shows its pid), or choose another --socket")
        case .notSocket:
            throw StartupError("\(path) exists and is not a socket; remove it or choose another --socket")
        case .stale:
            guard unlink(path) == 0 || errno == ENOENT else {
                throw StartupError("cannot remove the stale socket \(path): \(errnoText(errno))")
            }
            Log.info("removed stale socket \(path) (nothing was listening)")
        }
    }
}
