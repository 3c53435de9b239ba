import Foundation
import LTProtocol
#if canImport(Glibc)
import Glibc
#endif

/// A blocking NDJSON connection to a Unix stream socket (the test side; no libuv).
final class LineClient {
    let fd: Int32
    private var buffer: [UInt8] = []
    private var start = 0

    /// Connects to `path`. While `retryFor` lasts, a socket not yet bound or not yet listening is tried again
    /// (a daemon still starting); any other failure, or one after that, throws.
    init(path: String, retryFor: Duration = .zero) throws {
        let deadline = ContinuousClock.now + retryFor
        let address = try unixAddress(path)
        while true {
            let candidate = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard candidate >= 0 else { throw HarnessFailure("socket: errno \(errno)") }
            let connected = address.withSockaddr { connect(candidate, $0, $1) }
            if connected == 0 {
                fd = candidate
                return
            }
            let code = errno
            close(candidate)
            guard code == ENOENT || code == ECONNREFUSED, ContinuousClock.now < deadline else {
                throw HarnessFailure("connect \(path): \(String(cString: strerror(code)))")
            }
            usleep(20_000)
        }
    }

    deinit { close(fd) }

    func send(_ text: String) throws { try send(Array(text.utf8)) }

    func send(_ bytes: [UInt8]) throws {
        var done = 0
        while done < bytes.count {
            let n = bytes[done...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 { if errno == EINTR { continue }; throw HarnessFailure("send: \(String(cString: strerror(errno)))") }
            done += n
        }
    }

    /// The next line (with its `\n`), nil at end of stream; throws after `timeout` without one.
    func readLine(timeout: Duration = .seconds(30)) throws -> [UInt8]? {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let newline = buffer[start...].firstIndex(of: 0x0A) {
                let line = Array(buffer[start...newline])
                start = newline + 1
                if start > 1 << 20 { buffer.removeFirst(start); start = 0 }
                return line
            }
            let remaining = deadline - ContinuousClock.now
            guard remaining > .zero else { throw HarnessFailure("no line within \(timeout)") }
            guard waitReadable(fd, timeout: remaining) else { continue }
            var chunk = [UInt8](repeating: 0, count: 256 * 1024)
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 { if errno == EINTR { continue }; throw HarnessFailure("recv: \(String(cString: strerror(errno)))") }
            if n == 0 { return start < buffer.count ? Array(buffer[start...]) : nil }
            buffer.append(contentsOf: chunk[0..<n])
        }
    }

    func readJSON(timeout: Duration = .seconds(30)) throws -> JSONValue {
        guard let line = try readLine(timeout: timeout) else { throw HarnessFailure("connection closed") }
        return try JSONParser.parse(line.dropLast())
    }

    /// Sends one request line and returns the next line as JSON (the reply, when nothing else is streaming).
    func request(_ text: String, timeout: Duration = .seconds(30)) throws -> JSONValue {
        try send(text + "\n")
        return try readJSON(timeout: timeout)
    }

    /// Reads lines until the job's `end` event (inclusive); returns them all.
    func readUntilEnd(timeout: Duration = .seconds(120)) throws -> [[UInt8]] {
        var lines: [[UInt8]] = []
        while true {
            guard let line = try readLine(timeout: timeout) else { throw HarnessFailure("connection closed after \(lines.count) lines") }
            lines.append(line)
            if line.starts(with: Array("{\"type\":\"end\"".utf8)) { return lines }
        }
    }
}
