#if canImport(Glibc)
import Glibc
#endif

/// Where ltd listens and keeps its state when not told otherwise. ltd, ltctl and the Python client agree on these.
public enum DefaultPaths {
    public static let protocolVersion = 1
    public static let daemonVersion = "0.1.0"

    /// `LTD_SOCKET`, else `/run/ltd/ltd.sock` as root, else `$XDG_RUNTIME_DIR/ltd/ltd.sock`
    /// (falling back to `/tmp/ltd-$UID/ltd.sock` when XDG_RUNTIME_DIR is unset).
    public static func socket(environment: [String: String], uid: UInt32 = getuid()) -> String {
        if let explicit = environment["LTD_SOCKET"], !explicit.isEmpty { return explicit }
        if uid == 0 { return "/run/ltd/ltd.sock" }
        if let runtime = environment["XDG_RUNTIME_DIR"], !runtime.isEmpty { return runtime + "/ltd/ltd.sock" }
        return "/tmp/ltd-\(uid)/ltd.sock"
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
