import Foundation
import LTProtocol
#if canImport(Glibc)
import Glibc
#endif

/// The address of a path, or of an abstract name when `name` starts with "@".
func unixAddress(_ name: String) throws -> UnixSocketAddress {
    guard let address = UnixSocketAddress(name, allowAbstract: true) else { throw HarnessFailure("socket address too long: \(name)") }
    return address
}

/// Waits until `fd` is readable (or at end of stream) or `timeout` passes. True when readable.
func waitReadable(_ fd: Int32, timeout: Duration) -> Bool {
    let deadline = ContinuousClock.now + timeout
    var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
    while true {
        let remaining = max(deadline - ContinuousClock.now, .zero)
        // Rounded up, so a wait never ends just before the deadline.
        let milliseconds = Int32(clamping: remaining.components.seconds * 1000 + (remaining.components.attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000)
        let ready = poll(&descriptor, 1, milliseconds)
        if ready < 0 && errno == EINTR { continue }
        return ready > 0
    }
}

/// A datagram socket the test binds, standing in for systemd's `$NOTIFY_SOCKET`.
final class NotifySocket {
    let fd: Int32
    let name: String

    /// Binds `name`: a path, or an abstract name starting with "@".
    init(name: String) throws {
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw HarnessFailure("socket: errno \(errno)") }
        self.name = name
        do {
            let bound = try unixAddress(name).withSockaddr { bind(fd, $0, $1) }
            guard bound == 0 else { throw HarnessFailure("bind \(name): errno \(errno)") }
        } catch {
            close(fd)
            throw error
        }
    }

    deinit {
        close(fd)
        if !name.hasPrefix("@") { unlink(name) }
    }

    /// The next datagram, or nil after `timeout`.
    func receive(timeout: Duration) -> String? {
        guard waitReadable(fd, timeout: timeout) else { return nil }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        guard count >= 0 else { return nil }
        return String(decoding: buffer[0..<count], as: UTF8.self)
    }

    /// Receives until a datagram contains the assignment `line` (e.g. "READY=1"); returns everything seen.
    func receive(until line: String, timeout: Duration) -> (found: Bool, seen: [String]) {
        let deadline = ContinuousClock.now + timeout
        var seen: [String] = []
        while ContinuousClock.now < deadline {
            guard let message = receive(timeout: deadline - ContinuousClock.now) else { break }
            seen.append(message)
            if message.split(separator: "\n").contains(Substring(line)) { return (true, seen) }
        }
        return (false, seen)
    }
}
