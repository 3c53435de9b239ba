#if canImport(Glibc)
import Glibc
#endif

/// Writes bytes to a file descriptor (stdout) in large chunks: text is collected in a buffer and written with one
/// write(2) when the buffer passes `flushThreshold` or when the caller is about to wait for the daemon.
public final class BufferedOutput {
    public let fd: Int32
    private var buffer: [UInt8] = []
    public let flushThreshold: Int


    public init(fd: Int32, flushThreshold: Int = 64 * 1024) {
        self.fd = fd
        self.flushThreshold = flushThreshold
        buffer.reserveCapacity(flushThreshold + 4096)
    }

    public var isTerminal: Bool { isatty(fd) == 1 }

    public func write(_ text: String) throws {
        buffer.append(contentsOf: text.utf8)
        if buffer.count >= flushThreshold { try flush() }
    }

    public func write(bytes: some Sequence<UInt8>) throws {
        buffer.append(contentsOf: bytes)
        if buffer.count >= flushThreshold { try flush() }
    }

    public func flush() throws {
        if buffer.isEmpty { return }
        defer { buffer.removeAll(keepingCapacity: true) }
        try buffer.withUnsafeBytes { try writeDirectly($0) }
    }

    /// Writes the bytes directly (after anything buffered), looping over partial writes. `outputClosed` on EPIPE.
    public func writeAll(_ bytes: UnsafeRawBufferPointer) throws {
        try flush()
        try writeDirectly(bytes)
    }

    private func writeDirectly(_ bytes: UnsafeRawBufferPointer) throws {
        guard var p = bytes.baseAddress else { return }
        var left = bytes.count
        while left > 0 {
            let n = Glibc.write(fd, p, left)
            if n > 0 { p += n; left -= n; continue }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && errno == EPIPE { throw ClientError.outputClosed }
            throw ClientError.io(path: fd == STDOUT_FILENO ? "stdout" : "fd \(fd)", operation: "write", errno: n < 0 ? errno : EIO)
        }
    }
}
