#if canImport(Glibc)
import Glibc
#endif
import LTProtocol
import Synchronization

/// One line per significant event on stderr, written with a single write(2) so lines from the loop and the job
/// threads never interleave. Under systemd (JOURNAL_STREAM set) each line starts with a `<N>` syslog priority,
/// which journald turns into the entry's level; journald adds the timestamp. There, the main events of a job
/// (started, ended, control actions) go to journald's native socket instead, as one datagram with the same message
/// plus structured fields (`LTD_JOB=alice/job1`, `MESSAGE_ID=`…), so `journalctl LTD_JOB=alice/job1` finds them.
/// When that socket cannot take the entry, the plain line is written after all.
public enum Log {
    public enum Level: Int, Sendable, Comparable, CaseIterable {
        case error = 3, warning = 4, info = 6, debug = 7
        public static func < (a: Level, b: Level) -> Bool { a.rawValue < b.rawValue }
        public var name: String {
            switch self {
            case .error: return "error"
            case .warning: return "warning"
            case .info: return "info"
            case .debug: return "debug"
            }
        }
        public init?(name: String) {
            guard let level = Level.allCases.first(where: { $0.name == name }) else { return nil }
            self = level
        }
    }

    private struct Settings {
        var threshold: Level = .info
        var journal = false
        /// A datagram socket for journald's native protocol, and where to send (only under journald).
        var nativeSocket: Int32 = -1
        var nativeAddress: UnixSocketAddress?
    }
    /// Made by a call the optimiser cannot fold. Written as `Mutex(Settings())`, Swift 6.3's release build initialises
    /// the global statically and leaves the Mutex's value all zeros (`nativeSocket` 0, not -1), so `configure`
    /// closed stdin and libuv later aborted on a loop descriptor that had become 0 (docs/DAEMON.md, "Descriptors").
    private static let settings = makeSettings()
    @inline(never) private static func makeSettings() -> Mutex<Settings> { Mutex(Settings()) }

    /// journald's socket for structured entries (systemd.journal-fields(7), "native protocol").
    public static let journalSocketPath = "/run/systemd/journal/socket"

    /// Sets the most verbose level written, and whether ltd runs under journald: then lines get syslog priorities
    /// and structured entries go to `journalSocket`.
    public static func configure(level: Level, journal: Bool, journalSocket: String = journalSocketPath) {
        let address = journal ? UnixSocketAddress(journalSocket) : nil
        let fd = address == nil ? -1 : socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        let previous = settings.withLock { current -> Int32 in
            let old = current.nativeSocket
            current = Settings(threshold: level, journal: journal, nativeSocket: fd, nativeAddress: address)
            return old
        }
        if previous >= 0 { close(previous) }
    }

    public static func error(_ message: @autoclosure () -> String) { write(.error, message) }
    public static func warning(_ message: @autoclosure () -> String) { write(.warning, message) }
    public static func info(_ message: @autoclosure () -> String) { write(.info, message) }
    public static func debug(_ message: @autoclosure () -> String) { write(.debug, message) }
    /// A main event of a job, with its journal fields.
    public static func info(_ message: @autoclosure () -> String, _ fields: JournalFields) { write(.info, message, fields) }
    public static func warning(_ message: @autoclosure () -> String, _ fields: JournalFields) { write(.warning, message, fields) }

    private static func write(_ level: Level, _ message: () -> String, _ fields: JournalFields? = nil) {
        let current = settings.withLock { $0 }
        guard level <= current.threshold else { return }
        let text = "ltd \(level.name): " + message()
        if let fields, current.nativeSocket >= 0, let address = current.nativeAddress {
            let entry = fields.datagram(message: text, priority: level.rawValue)
            let sent = entry.withUnsafeBytes { bytes in
                address.withSockaddr { sendto(current.nativeSocket, bytes.baseAddress, bytes.count, Int32(MSG_NOSIGNAL), $0, $1) }
            }
            if sent == entry.count { return }
        }
        var bytes = Array(((current.journal ? "<\(level.rawValue)>" : "") + text + "\n").utf8)
        bytes.withUnsafeMutableBytes { raw in
            var done = 0
            while done < raw.count {
                let n = Glibc.write(2, raw.baseAddress.map { $0 + done }, raw.count - done)
                if n < 0 { if errno == EINTR { continue }; return }
                done += n
            }
        }
    }
}

/// The MESSAGE_IDs of ltd's main events: fixed for good, so `journalctl MESSAGE_ID=…` finds one kind of event
/// across versions.
public enum JournalMessageID: String, Sendable {
    /// A job was started (or created by a publisher).
    case jobStarted = "0420f51135464dcaaa1b75cd38d00ebb"
    /// A job ended finished or cancelled (`LTD_STATE` says which).
    case jobFinished = "aa614c76688840acac7aad571f7e12aa"
    /// A job ended failed or diverged.
    case jobFailed = "a8d2f551cf5a428e97a3b6b951250fcf"
    /// Someone started, paused, resumed, stepped, cancelled, deleted, pruned or created a job, or retention removed
    /// one (`LTD_ACTION`, `LTD_ACTOR`).
    case controlAction = "bc037b330b2f4b96b161395679943565"
}

/// The structured fields of one journal entry about a job.
public struct JournalFields: Sendable {
    public var messageID: JournalMessageID
    /// `OWNER/NAME`.
    public var job: String
    public var owner: String
    public var uid: UInt32
    /// More `KEY=value` pairs (upper-case keys, as journald requires).
    public var extra: [(String, String)] = []

    public init(messageID: JournalMessageID, job: String, owner: String, uid: UInt32) {
        self.messageID = messageID; self.job = job; self.owner = owner; self.uid = uid
    }

    /// The entry in journald's native protocol: `KEY=value\n` per field, or, for a value holding a newline,
    /// `KEY\n`, its length as 64-bit little-endian, the value and `\n`.
    public func datagram(message: String, priority: Int) -> [UInt8] {
        var out: [UInt8] = []
        let fields = [("MESSAGE", message), ("PRIORITY", String(priority)), ("SYSLOG_IDENTIFIER", "ltd"),
                      ("MESSAGE_ID", messageID.rawValue), ("LTD_JOB", job), ("LTD_OWNER", owner),
                      ("LTD_UID", String(uid))] + extra
        for (key, value) in fields {
            out += Array(key.utf8)
            let bytes = Array(value.utf8)
            if bytes.contains(UInt8(ascii: "\n")) {
                out.append(UInt8(ascii: "\n"))
                withUnsafeBytes(of: UInt64(bytes.count).littleEndian) { out += $0 }
            } else {
                out.append(UInt8(ascii: "="))
            }
            out += bytes
            out.append(UInt8(ascii: "\n"))
        }
        return out
    }
}

/// The text of an errno value, for log lines and startup errors.
func errnoText(_ code: Int32) -> String {
    String(cString: strerror(code))
}

/// The text of a libuv error code (negative errno), for log lines.
func uvErrorText(_ code: Int32) -> String {
    String(cString: strerror(-code))
}
