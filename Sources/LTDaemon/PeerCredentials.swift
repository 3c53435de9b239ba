#if canImport(Glibc)
import Glibc
#endif
import CLibUV
import LTProtocol

/// The caller's identity behind a connected Unix socket, from the kernel (SO_PEERCRED). Every owner check rests on
/// it, so a connection whose credentials cannot be read is refused rather than served as an unknown user.
enum PeerCredentials {
    /// The credentials of `fd`'s peer, or why there are none. The user name is left for `userName(of:)`, so that
    /// a connection costs no user-database lookup.
    static func read(fd: Int32) -> Result<ProcessIdentity, CredentialsUnavailable> {
        var credentials = ltd_ucred()
        if ltd_peer_credentials(fd, &credentials) != 0 {
            return .failure(CredentialsUnavailable(reason: "SO_PEERCRED failed: \(String(cString: strerror(errno)))"))
        }
        // The kernel reports uid -1 when the socket carries no credentials at all (not a Unix socket).
        if credentials.uid == uid_t.max {
            return .failure(CredentialsUnavailable(reason: "the socket carries no peer credentials (not a Unix socket?)"))
        }
        return .success(ProcessIdentity(pid: credentials.pid, uid: credentials.uid, gid: credentials.gid, user: nil))
    }

    /// The supplementary groups of `fd`'s peer when it connected (SO_PEERGROUPS); none when they cannot be read.
    static func groups(fd: Int32) -> [gid_t] {
        var groups = [gid_t](repeating: 0, count: 64)
        while true {
            var length = socklen_t(groups.count * MemoryLayout<gid_t>.stride)
            let result = groups.withUnsafeMutableBytes { getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, $0.baseAddress, &length) }
            if result == 0 { return Array(groups.prefix(Int(length) / MemoryLayout<gid_t>.stride)) }
            // ERANGE: the kernel says in `length` how much room the list needs (at most NGROUPS_MAX, 65536).
            guard errno == ERANGE, Int(length) > groups.count * MemoryLayout<gid_t>.stride else { return [] }
            groups = [gid_t](repeating: 0, count: Int(length) / MemoryLayout<gid_t>.stride)
        }
    }

    /// The daemon itself.
    static func ownIdentity() -> ProcessIdentity {
        ProcessIdentity(pid: getpid(), uid: getuid(), gid: getgid(), user: userName(of: getuid()))
    }

    /// "alice (uid 1000)", or "uid 1000" when the user database has no name for it.
    static func describe(uid: uid_t) -> String {
        ProcessIdentity.describe(uid: uid, user: userName(of: uid))
    }

    /// The login name of `uid` from the user database (files, NSS), or nil.
    static func userName(of uid: uid_t) -> String? { ProcessIdentity.userName(of: uid) }
}

struct CredentialsUnavailable: Error {
    let reason: String
}
