#if canImport(Glibc)
import Glibc
#endif

/// Who a process is, as `hello` reports it: the caller (from the kernel, through SO_PEERCRED) and the daemon itself.
public struct ProcessIdentity: Sendable, Equatable {
    public var pid: Int32
    public var uid: UInt32
    public var gid: UInt32
    /// The login name of `uid` in the daemon's user database; nil when it has none.
    public var user: String?

    public init(pid: Int32, uid: UInt32, gid: UInt32, user: String?) {
        self.pid = pid; self.uid = uid; self.gid = gid; self.user = user
    }

    /// Reads the fields `writeFields` writes; nil when `pid`, `uid` or `gid` is missing or out of range.
    public init?(json: JSONValue?) {
        guard let json, let pid = json["pid"]?.intValue, let uid = json["uid"]?.intValue, let gid = json["gid"]?.intValue,
              let pid32 = Int32(exactly: pid), let uid32 = UInt32(exactly: uid), let gid32 = UInt32(exactly: gid)
        else { return nil }
        self.init(pid: pid32, uid: uid32, gid: gid32, user: json["user"]?.stringValue)
    }

    /// `pid`, `uid`, `gid`, and `user` when known, into the object being written.
    func writeFields(to w: inout JSONWriter) {
        w.field("pid", Int(pid))
        w.key("uid"); w.integer(UInt64(uid))
        w.key("gid"); w.integer(UInt64(gid))
        if let user { w.field("user", user) }
    }

    /// "alice (uid 1000)", or "uid 1000" without a name.
    public var described: String { Self.describe(uid: uid, user: user) }

    /// "alice (uid 1000)", or "uid 1000" when `user` is nil: how ltd and ltctl name a user everywhere.
    public static func describe(uid: UInt32, user: String?) -> String {
        user.map { "\($0) (uid \(uid))" } ?? "uid \(uid)"
    }

    /// The system service's user (systemd/sysusers.d): besides root, the only other uid a client trusts as its daemon.
    public static let serviceUser = "ltd"

    /// The login name of `uid` from the user database (files, NSS), or nil.
    public static func userName(of uid: UInt32) -> String? {
        lookUp({ getpwuid_r(uid, &$0, $1, $2, &$3) }) { String(cString: $0.pw_name) }
    }

    /// The uid of the user called `name`, or nil when the user database has none.
    public static func uid(ofUser name: String) -> UInt32? {
        lookUp({ getpwnam_r(name, &$0, $1, $2, &$3) }) { $0.pw_uid }
    }

    /// Runs a reentrant user-database call; `read` takes what it needs while the entry's strings still live.
    private static func lookUp<T>(_ call: (inout passwd, UnsafeMutablePointer<CChar>, Int, inout UnsafeMutablePointer<passwd>?) -> Int32,
                                  _ read: (passwd) -> T) -> T? {
        var buffer = [CChar](repeating: 0, count: 4096)
        return buffer.withUnsafeMutableBufferPointer { storage -> T? in
            var entry = passwd()
            var found: UnsafeMutablePointer<passwd>?
            guard let base = storage.baseAddress, call(&entry, base, storage.count, &found) == 0, found != nil,
                  entry.pw_name != nil else { return nil }
            return read(entry)
        }
    }
}
