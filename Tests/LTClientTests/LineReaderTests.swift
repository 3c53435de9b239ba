#if canImport(Glibc)
import Glibc
#endif
import Testing
import LTClient

/// LineReader over a real pipe: lines split across reads, a line longer than the buffer, spans of complete lines,
/// and the end of the stream inside a line.
@Suite struct LineReaderTests {
    /// A pipe whose write end gets `chunks`, written one by one, then closed (the reader sees EOF).
    static func reader(_ chunks: [[UInt8]], initialCapacity: Int = 256 * 1024) throws -> LineReader {
        var ends: [Int32] = [0, 0]
        try #require(pipe(&ends) == 0)
        let writer = ends[1]
        let total = chunks.reduce(0) { $0 + $1.count }
        try #require(total < 60_000, "keep within the pipe buffer so writing never blocks")
        for chunk in chunks {
            let written = chunk.withUnsafeBytes { write(writer, $0.baseAddress, $0.count) }
            try #require(written == chunk.count)
        }
        close(writer)
        return LineReader(fd: ends[0], sourceName: "test pipe", initialCapacity: initialCapacity)
    }

    @Test func linesSplitAcrossWritesComeOutWhole() throws {
        let reader = try Self.reader([Array("{\"a\":1}\n{\"b\"".utf8), Array(":2}\n\n".utf8), Array("last\n".utf8)])
        defer { close(reader.fd) }
        #expect(try reader.readLine() == Array("{\"a\":1}".utf8))
        #expect(try reader.readLine() == Array("{\"b\":2}".utf8))
        #expect(try reader.readLine() == [])
        #expect(try reader.readLine() == Array("last".utf8))
        #expect(try reader.readLine() == nil)
    }

    @Test func completeLinesHandsOutEveryBufferedLineAsOneSpan() throws {
        let reader = try Self.reader([Array("one\ntwo\nthr".utf8), Array("ee\npart".utf8)])
        defer { close(reader.fd) }
        // Both writes are in the pipe before the first read: one span holds every complete line, not the partial one.
        let first = try #require(try reader.completeLines())
        #expect(Array(first) == Array("one\ntwo\nthree\n".utf8))
        reader.consume(4)
        let rest = try #require(try reader.completeLines())
        #expect(Array(rest) == Array("two\nthree\n".utf8))
        reader.consume(rest.count)
        #expect(reader.bufferedByteCount == 4)
        #expect(throws: ClientError.self) { try reader.completeLines() }
    }

    @Test func aLineLongerThanTheBufferGrowsIt() throws {
        let long = Array(repeating: UInt8(ascii: "x"), count: 50_000)
        let reader = try Self.reader([long, [0x0A], Array("next\n".utf8)], initialCapacity: 1024)
        defer { close(reader.fd) }
        #expect(try reader.readLine() == long)
        #expect(try reader.readLine() == Array("next".utf8))
    }

    @Test func theStreamEndingInsideALineIsAnError() throws {
        let reader = try Self.reader([Array("whole\npart".utf8)])
        defer { close(reader.fd) }
        #expect(try reader.readLine() == Array("whole".utf8))
        #expect(throws: ClientError.self) { try reader.readLine() }
    }
}
