#if canImport(Glibc)
import Glibc
#endif

/// A Unix socket address (`sockaddr_un`) filled in once for everyone: the client's connect, the daemon's probe of
/// a stale socket, sd_notify's datagrams and the tests. A name starting with "@" (when allowed) is an abstract
/// address: a NUL, then the name, not NUL-terminated.
public struct UnixSocketAddress: Sendable {
    private var storage = sockaddr_un()
    /// The address length to pass to connect/bind/sendto: up to the path's NUL, or exactly the abstract name.
    public let length: socklen_t

    /// Bytes `sun_path` holds, including a path's terminating NUL (108 on Linux).
    public static let pathCapacity = MemoryLayout.size(ofValue: sockaddr_un().sun_path)

    /// Nil when the name does not fit in `sun_path` (the kernel would silently cut it) or is empty.
    public init?(_ name: String, allowAbstract: Bool = false) {
        var bytes = Array(name.utf8)
        if allowAbstract, bytes.first == UInt8(ascii: "@") {
            bytes[0] = 0
            guard bytes.count >= 2 else { return nil }
        } else {
            guard !bytes.isEmpty else { return nil }
            bytes.append(0)
        }
        guard bytes.count <= UnixSocketAddress.pathCapacity else { return nil }
        storage.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &storage.sun_path) { path in
            for (index, byte) in bytes.enumerated() { path[index] = byte }
        }
        length = socklen_t(MemoryLayout<sockaddr_un>.offset(of: \sockaddr_un.sun_path) ?? 2) + socklen_t(bytes.count)
    }

    /// Calls `body` with the address as a `sockaddr` and its length.
    public func withSockaddr<Result>(_ body: (UnsafePointer<sockaddr>, socklen_t) throws -> Result) rethrows -> Result {
        try withUnsafePointer(to: storage) { pointer in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { try body($0, length) }
        }
    }
}
