import Foundation
import Testing
@testable import LTDaemon
import LTProtocol

/// The daemon's owner checks rest on `PeerCredentials.read`; a descriptor without credentials must give a reason,
/// never a made-up identity (the daemon then refuses the connection with permission_denied).
struct PeerCredentialsTests {
    @Test func aUnixSocketPeerIsTheCallingProcess() throws {
        var fds: [Int32] = [-1, -1]
        try #require(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
        defer { close(fds[0]); close(fds[1]) }
        let identity = try PeerCredentials.read(fd: fds[0]).get()
        #expect(identity == ProcessIdentity(pid: getpid(), uid: getuid(), gid: getgid(), user: nil))
        #expect(PeerCredentials.userName(of: 0) == "root")
    }

    @Test func aDescriptorThatIsNoSocketHasNoCredentials() throws {
        var fds: [Int32] = [-1, -1]
        try #require(pipe(&fds) == 0)
        defer { close(fds[0]); close(fds[1]) }
        guard case .failure(let unavailable) = PeerCredentials.read(fd: fds[0]) else {
            Issue.record("a pipe gave credentials"); return
        }
        #expect(unavailable.reason.contains("SO_PEERCRED failed"))
    }

    /// A TCP connection answers SO_PEERCRED with uid -1: the kernel has no credentials for it.
    @Test func aTCPConnectionHasNoCredentials() throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        try #require(listener >= 0)
        defer { close(listener) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { generic in
                bind(listener, generic, length) == 0 && listen(listener, 1) == 0
                    && getsockname(listener, generic, &length) == 0
            }
        }
        try #require(bound)
        let client = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        try #require(client >= 0)
        defer { close(client) }
        let connected = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(client, $0, length) == 0 }
        }
        try #require(connected)
        guard case .failure(let unavailable) = PeerCredentials.read(fd: client) else {
            Issue.record("a TCP socket gave credentials"); return
        }
        #expect(unavailable.reason.contains("no peer credentials"))
    }
}
