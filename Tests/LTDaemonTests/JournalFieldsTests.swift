#if canImport(Glibc)
import Glibc
#endif
import Foundation
import LTProtocol
import Testing
import LTDaemon

/// The structured journal entries (journald's native protocol): what `Log` sends for a job's main events, received
/// on a real datagram socket standing where /run/systemd/journal/socket would be. The real journald reads them in
/// the systemd scenario (scripts/test-systemd-scenario: `journalctl LTD_JOB=alice/…`).
@Suite("journal fields", .serialized)
struct JournalFieldsTests {
    /// Parses native-protocol fields back: `KEY=value\n`, or `KEY\n` + 64-bit LE length + value + `\n`.
    static func fields(_ bytes: [UInt8]) -> [(String, String)] {
        var out: [(String, String)] = []
        var i = 0
        while i < bytes.count {
            guard let end = bytes[i...].firstIndex(where: { $0 == UInt8(ascii: "=") || $0 == UInt8(ascii: "\n") }) else { break }
            let key = String(decoding: bytes[i..<end], as: UTF8.self)
            if bytes[end] == UInt8(ascii: "=") {
                let stop = bytes[end...].firstIndex(of: UInt8(ascii: "\n")) ?? bytes.count
                out.append((key, String(decoding: bytes[(end + 1)..<stop], as: UTF8.self)))
                i = stop + 1
            } else {
                var length = 0
                for k in 0..<8 { length |= Int(bytes[end + 1 + k]) << (8 * k) }
                let start = end + 9
                out.append((key, String(decoding: bytes[start..<(start + length)], as: UTF8.self)))
                i = start + length + 1
            }
        }
        return out
    }

    @Test func aValueWithANewlineIsLengthPrefixed() {
        var entry = JournalFields(messageID: .jobFailed, job: "alice/job1", owner: "alice", uid: 1000)
        entry.extra = [("LTD_STATE", "failed")]
        let bytes = entry.datagram(message: "ltd warning: two\nlines", priority: 4)
        let parsed = Self.fields(bytes)
        #expect(parsed.map(\.0) == ["MESSAGE", "PRIORITY", "SYSLOG_IDENTIFIER", "MESSAGE_ID", "LTD_JOB", "LTD_OWNER", "LTD_UID", "LTD_STATE"])
        #expect(parsed.first?.1 == "ltd warning: two\nlines")
        #expect(Array(bytes.prefix(8)) == Array("MESSAGE\n".utf8))
        #expect(Dictionary(uniqueKeysWithValues: parsed)["MESSAGE_ID"] == "a8d2f551cf5a428e97a3b6b951250fcf")
        #expect(Dictionary(uniqueKeysWithValues: parsed)["LTD_UID"] == "1000")
    }

    @Test func underJournaldAJobEventIsOneDatagramAndOtherLinesStayPlain() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ltd-journal-\(getpid())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/socket"
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        try #require(fd >= 0)
        defer { close(fd) }
        let address = try #require(UnixSocketAddress(path))
        try #require(address.withSockaddr { bind(fd, $0, $1) } == 0)

        Log.configure(level: .info, journal: true, journalSocket: path)
        defer { Log.configure(level: .info, journal: false) }
        Log.info("job alice/job1 started", JournalFields(messageID: .jobStarted, job: "alice/job1", owner: "alice", uid: 1000))
        Log.debug("not sent: below the level")

        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = recv(fd, &buffer, buffer.count, Int32(MSG_DONTWAIT))
        try #require(count > 0)
        let fields = Dictionary(uniqueKeysWithValues: Self.fields(Array(buffer.prefix(count))))
        #expect(fields["MESSAGE"] == "ltd info: job alice/job1 started")
        #expect(fields["PRIORITY"] == "6")
        #expect(fields["MESSAGE_ID"] == JournalMessageID.jobStarted.rawValue)
        #expect(fields["LTD_JOB"] == "alice/job1")
        #expect(fields["LTD_OWNER"] == "alice")
        #expect(fields["LTD_UID"] == "1000")
        #expect(recv(fd, &buffer, buffer.count, Int32(MSG_DONTWAIT)) < 0, "one entry, nothing else on the socket")
    }
}
