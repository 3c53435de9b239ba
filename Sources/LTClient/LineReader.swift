#if canImport(Glibc)
import Glibc
#endif

/// A buffered reader of newline-terminated lines from a file descriptor.
///
/// Built for `ltctl tail --json`, which must keep up with a daemon streaming hundreds of thousands of events per
/// second: it reads with read(2) into one growing buffer (at least 64 KiB free per call) and hands out *all* complete
/// lines at once as one contiguous span, so the caller can pass them to write(2) in one call without copying or
/// parsing. `readLine` is the convenience for request/reply traffic.
public final class LineReader {
    public let fd: Int32
    /// Used in error messages.
    public let sourceName: String
    private var storage: UnsafeMutableRawBufferPointer
    /// Unconsumed bytes are storage[start..<end].
    private var start = 0
    private var end = 0
    /// storage[start..<scanned] is known to hold no newline, so repeated searches stay linear.
    private var scanned = 0
    private var sawEOF = false

    public static let chunkSize = 64 * 1024
    /// A single line may not exceed this (a `start` event carries the job's data inline, so it can be large).
    public static let maxLineBytes = 1 << 30

    public init(fd: Int32, sourceName: String, initialCapacity: Int = 256 * 1024) {
        self.fd = fd
        self.sourceName = sourceName
        storage = .allocate(byteCount: max(initialCapacity, 2 * Self.chunkSize), alignment: 16)
    }

    deinit { storage.deallocate() }

    /// Bytes buffered but not yet consumed (possibly a partial line).
    public var bufferedByteCount: Int { end - start }

    /// Whether a complete line is already buffered, so the next `readLine` will not block.
    public var hasBufferedLine: Bool { newlineIndex() != nil }

    /// The next line without its `\n`, or nil at a clean end of stream. The bytes are copied out.
    /// Throws `connectionClosed` if the stream ends inside a line.
    public func readLine() throws -> [UInt8]? {
        while true {
            if let nl = newlineIndex() {
                let line = Array(UnsafeRawBufferPointer(rebasing: storage[start..<nl]))
                consume(nl + 1 - start)
                return line
            }
            if try !fill() { return try endOfStream() }
        }
    }

    /// Every complete line currently buffered, as one span ending in `\n`; reads (blocking) until there is at least one.
    /// nil at a clean end of stream. The span stays valid until the next call to this reader; call `consume` with the
    /// number of bytes used.
    public func completeLines() throws -> UnsafeRawBufferPointer? {
        while true {
            if newlineIndex() != nil {
                // The last newline in the buffer ends the span; search backwards from the end.
                var last = end - 1
                while storage[last] != 0x0A { last -= 1 }
                return UnsafeRawBufferPointer(rebasing: storage[start...last])
            }
            if try !fill() { return try endOfStream() }
        }
    }

    public func consume(_ count: Int) {
        start += min(count, end - start)
        if scanned < start { scanned = start }
        if start == end { start = 0; end = 0; scanned = 0 }
    }

    private func endOfStream<T>() throws -> T? {
        if start == end { return nil }
        throw ClientError.connectionClosed(path: sourceName)
    }

    private func newlineIndex() -> Int? {
        guard scanned < end, let base = storage.baseAddress else { return nil }
        if let hit = memchr(base + scanned, 0x0A, end - scanned) {
            return base.distance(to: UnsafeMutableRawPointer(hit))
        }
        scanned = end
        return nil
    }

    /// Reads once (retrying EINTR). Returns false at end of stream.
    private func fill() throws -> Bool {
        if sawEOF { return false }
        try makeRoom()
        guard let base = storage.baseAddress else { return false }
        while true {
            let n = read(fd, base + end, storage.count - end)
            if n > 0 { end += n; return true }
            if n == 0 { sawEOF = true; return false }
            if errno == EINTR { continue }
            if errno == ECONNRESET { sawEOF = true; return false }
            throw ClientError.io(path: sourceName, operation: "read", errno: errno)
        }
    }

    /// Ensures at least `chunkSize` free bytes after `end`: first by sliding the unconsumed bytes to the front,
    /// then by doubling the buffer (a long line).
    private func makeRoom() throws {
        if storage.count - end >= Self.chunkSize { return }
        guard let base = storage.baseAddress else { return }
        let pending = end - start
        if start > 0 {
            memmove(base, base + start, pending)
            scanned -= start
            start = 0
            end = pending
            if storage.count - end >= Self.chunkSize { return }
        }
        guard storage.count < Self.maxLineBytes else {
            throw ClientError.protocolViolation(path: sourceName, detail: "a line longer than \(Self.maxLineBytes) bytes")
        }
        let bigger = UnsafeMutableRawBufferPointer.allocate(byteCount: storage.count * 2, alignment: 16)
        if let dst = bigger.baseAddress { memcpy(dst, base, pending) }
        storage.deallocate()
        storage = bigger
    }
}
