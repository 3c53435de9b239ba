#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// One line per significant event on stderr, written with a single write(2) so lines from the loop and the job
/// threads never interleave. Under systemd (JOURNAL_STREAM set) each line starts with a `<N>` syslog priority,
/// which journald turns into the entry's level; journald adds the timestamp.
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

    private struct Settings { var threshold: Level = .info; var journal = false }
    private static let settings = Mutex(Settings())

    /// Sets the most verbose level written, and whether to prefix syslog priorities.
    public static func configure(level: Level, journal: Bool) {
        settings.withLock { $0 = Settings(threshold: level, journal: journal) }
    }

    public static func error(_ message: @autoclosure () -> String) { write(.error, message) }
    public static func warning(_ message: @autoclosure () -> String) { write(.warning, message) }
    public static func info(_ message: @autoclosure () -> String) { write(.info, message) }
    public static func debug(_ message: @autoclosure () -> String) { write(.debug, message) }

    private static func write(_ level: Level, _ message: () -> String) {
        let current = settings.withLock { $0 }
        guard level <= current.threshold else { return }
        var line = current.journal ? "<\(level.rawValue)>" : ""
        line += "ltd \(level.name): "
        line += message()
        line += "\n"
        var bytes = Array(line.utf8)
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

/// The text of an errno value, for log lines and startup errors.
func errnoText(_ code: Int32) -> String {
    String(cString: strerror(code))
}

/// The text of a libuv error code (negative errno), for log lines.
func uvErrorText(_ code: Int32) -> String {
    String(cString: strerror(-code))
}
