#if canImport(Glibc)
import Glibc
#endif

/// Where ltd listens and keeps its state when not told otherwise. ltd, ltctl and the Python client agree on these.
public enum DefaultPaths {
    public static let protocolVersion = 1
    public static let daemonVersion = "0.2.0"

    /// `LTD_SOCKET`, else `/run/ltd/ltd.sock` as root, else `$XDG_RUNTIME_DIR/ltd/ltd.sock`
    /// (falling back to `/tmp/ltd-$UID/ltd.sock` when XDG_RUNTIME_DIR is unset).
    public static func socket(environment: [String: String], uid: UInt32 = getuid()) -> String {
        if let explicit = environment["LTD_SOCKET"], !explicit.isEmpty { return explicit }
        if uid == 0 { return systemSocket }
        if let runtime = environment["XDG_RUNTIME_DIR"], !runtime.isEmpty { return runtime + "/ltd/ltd.sock" }
        return temporarySocketDirectory(uid: uid) + "/ltd.sock"
    }

    /// The socket directory of last resort, in the world-writable /tmp: ltd uses it only if it is the user's own,
    /// mode 0700 (anyone could have made it first, and could then swap the socket).
    public static func temporarySocketDirectory(uid: UInt32) -> String { "/tmp/ltd-\(uid)" }

    /// The system service's socket.
    public static let systemSocket = "/run/ltd/ltd.sock"

    /// Where a client looks: the daemon's default, except that a user with no daemon of their own reaches the system
    /// service (members of the `ltd` group need no LTD_SOCKET). Like docker's client, it never guesses past that.
    public static func clientSocket(environment: [String: String], uid: UInt32 = getuid(),
                                    exists: (String) -> Bool = { access($0, F_OK) == 0 }) -> String {
        let own = socket(environment: environment, uid: uid)
        if own == systemSocket || environment["LTD_SOCKET"].map({ !$0.isEmpty }) == true { return own }
        return !exists(own) && exists(systemSocket) ? systemSocket : own
    }

    /// `LTD_STATE_DIR`, else systemd's `$STATE_DIRECTORY`, else `/var/lib/ltd` as root, else `$XDG_STATE_HOME/ltd`
    /// (default `~/.local/state/ltd`).
    public static func stateDirectory(environment: [String: String], uid: UInt32 = getuid()) -> String {
        if let explicit = environment["LTD_STATE_DIR"], !explicit.isEmpty { return explicit }
        if let systemd = environment["STATE_DIRECTORY"], !systemd.isEmpty {
            // systemd passes a colon-separated list when several are configured; ours is the first.
            return String(systemd.split(separator: ":").first ?? Substring(systemd))
        }
        if uid == 0 { return "/var/lib/ltd" }
        if let state = environment["XDG_STATE_HOME"], !state.isEmpty { return state + "/ltd" }
        return (environment["HOME"] ?? "/tmp") + "/.local/state/ltd"
    }
}
