import ArgumentParser
import Foundation
import LTClient
import LTProtocol

extension LTCtl {
    struct Top: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "A live view of the daemon itself: connections, queues, memory, loop lag, jobs, and each limit's use.",
            discussion: """
            Asks the daemon for its figures (the stats op) once a second and shows them full-screen: connections \
            and subscribers, output queued for clients that read slowly, unfinished request lines, open file \
            descriptors, resident memory, how late its event loop runs, jobs by state, bytes on disk, restore \
            progress, then every limit (ltd's --max-… flags) with its current use, then the users with the most \
            connections. Anyone sees the totals; the rows of other users are shown to root and the admin group only \
            (others see their own row).
            Keys: q (or Ctrl-C) quits. --once prints one frame and exits (also what top does when stdout is not a \
            terminal); --json prints the daemon's reply as one JSON line.
            Exit status: 0; 1 when the daemon is too old to have stats; 69 when it cannot be reached.
            """)

        @OptionGroup var connection: ConnectionOptions
        @Flag(help: "Print one frame and exit.") var once = false
        @Flag(help: "Print the daemon's stats reply as JSON and exit.") var json = false

        func run() throws {
            try runReportingErrors {
                let daemon = try connection.connect()
                try daemon.require(.stats, for: "show its figures (ltctl top)")
                let out = BufferedOutput(fd: STDOUT_FILENO)
                if json {
                    try out.write(try daemon.request("stats").serialized + "\n")
                } else if once || isatty(STDOUT_FILENO) != 1 || isatty(STDIN_FILENO) != 1 {
                    let width = Terminal.width(fd: STDOUT_FILENO) ?? Int.max
                    try out.write(TopView.lines(try daemon.request("stats")).map { TopView.fit($0, width) }.joined(separator: "\n") + "\n")
                } else {
                    return try TopSession(daemon: daemon, connection: connection).run()
                }
                try out.flush()
                return .success
            }
        }
    }
}

/// The text of one `top` frame, from a stats reply.
enum TopView {
    static func lines(_ s: JSONValue) -> [String] {
        func int(_ v: JSONValue?) -> Int { v?.intValue ?? 0 }
        let c = s["connections"], q = s["queued_bytes"], lag = s["loop_lag_us"], j = s["jobs"], r = s["restore"]
        var lines: [String] = []
        lines.append("ltd \(s["version"]?.stringValue ?? "?"), pid \(int(s["pid"])), up \(duration(int(s["uptime_s"])))"
                     + "; loop lag \(milliseconds(int(lag?["last"]))) (max \(milliseconds(int(lag?["max"]))))")
        lines.append("connections \(int(c?["open"])) from \(Format.count(int(c?["users"]), "user")), \(int(c?["subscribers"])) subscribing, "
                     + "\(int(c?["publishers"])) publishing; queued \(bytes(int(q?["total"]))) (most on one: \(bytes(int(q?["max_one_connection"])))); "
                     + "unfinished lines \(bytes(int(s["pending_line_bytes"])))")
        lines.append("process: \(s["open_fds"]?.intValue.map(String.init) ?? "?") open fds, RSS \(s["rss_bytes"]?.intValue.map(bytes) ?? "?")")
        let states = JobState.allCases.compactMap { state -> String? in
            let n = int(j?[state.rawValue])
            return n > 0 ? "\(n) \(state.rawValue)" : nil
        }
        let restore = r?["running"]?.boolValue == true ? "restoring (\(int(r?["read"])) of \(int(r?["total"])) read)" : "restore done (\(int(r?["total"])) read)"
        lines.append("jobs \(int(j?["total"]))" + (states.isEmpty ? "" : ": " + states.joined(separator: ", "))
                     + "; on disk \(bytes(int(s["state_bytes"]))); \(restore)")
        lines.append("")
        lines.append(row(["LIMIT", "USED", "OF", "USE"], widths: [-26, 10, 10, 5]))
        for limit in s["limits"]?.arrayValue ?? [] {
            let name = limit["name"]?.stringValue ?? "?", used = int(limit["used"]), of = int(limit["limit"])
            let isBytes = name.contains("bytes")
            let percent = of > 0 ? "\(Int((Double(used) / Double(of) * 100).rounded()))%" : "-"
            lines.append(row(["--" + name, isBytes ? bytes(used) : String(used), isBytes ? bytes(of) : String(of), percent],
                             widths: [-26, 10, 10, 5]))
        }
        lines.append("")
        lines.append(row(["USER", "UID", "CONN", "JOBS", "UNFINISHED", "ON DISK"], widths: [-16, 7, 5, 5, 10, 10]))
        for user in s["users"]?.arrayValue ?? [] {
            lines.append(row([user["user"]?.stringValue ?? "?", String(int(user["uid"])), String(int(user["connections"])),
                              String(int(user["jobs"])), String(int(user["unfinished"])), bytes(int(user["bytes"]))],
                             widths: [-16, 7, 5, 5, 10, 10]))
        }
        if s["users_scope"]?.stringValue == "own" {
            lines.append("(your own row only: other users' rows are for root and the daemon's admin group)")
        }
        return lines
    }

    /// Columns padded to `widths`: negative is left-aligned.
    static func row(_ cells: [String], widths: [Int]) -> String {
        zip(cells, widths).map { cell, width in
            width < 0 ? Format.padRight(cell, -width) : Format.padLeft(cell, width)
        }.joined(separator: " ")
    }

    static func fit(_ line: String, _ columns: Int) -> String {
        line.count <= columns ? line : String(line.prefix(max(0, columns - 1))) + "…"
    }

    /// 1023 B, 1.5 KiB, 12.0 MiB, 2.0 GiB.
    static func bytes(_ n: Int) -> String {
        var value = Double(n), unit = 0
        let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
        while value >= 1024, unit < units.count - 1 { value /= 1024; unit += 1 }
        return unit == 0 ? "\(n) B" : Format.fixed(value, 1) + " " + units[unit]
    }

    static func milliseconds(_ microseconds: Int) -> String { Format.fixed(Double(microseconds) / 1000, 1) + " ms" }

    static func duration(_ seconds: Int) -> String {
        if seconds < 60 { return "\(seconds)s" }
        if seconds < 3600 { return "\(seconds / 60)m\(Format.padLeft(String(seconds % 60), 2).replacingOccurrences(of: " ", with: "0"))s" }
        return "\(seconds / 3600)h\(Format.padLeft(String(seconds / 60 % 60), 2).replacingOccurrences(of: " ", with: "0"))m"
    }
}

/// The live `top`: asks for stats each second, redraws, follows resizes, quits on q or Ctrl-C. While the daemon is
/// unreachable the last frame stays with a line saying so, and it reconnects each second.
final class TopSession {
    private var daemon: Connection?
    private let connection: ConnectionOptions
    private var last: JSONValue?
    private var problem: String?

    init(daemon: Connection, connection: ConnectionOptions) {
        self.daemon = daemon
        self.connection = connection
    }

    func run() throws -> ExitStatus {
        let signals = PendingSignals([SIGWINCH, SIGINT, SIGTERM, SIGHUP])
        let screen = try FullScreen(alternate: true)
        defer { screen.restore() }
        var due = 0.0
        while true {
            let now = Date().timeIntervalSince1970
            if now >= due {
                refresh()
                draw(screen)
                due = now + 1
            }
            for signal in signals.take() {
                if signal == SIGWINCH { draw(screen) } else { return signal == SIGINT ? .interrupted : .success }
            }
            var fds = [pollfd(fd: STDIN_FILENO, events: Int16(POLLIN), revents: 0)]
            guard poll(&fds, 1, 100) > 0 else { continue }
            var byte: UInt8 = 0
            guard read(STDIN_FILENO, &byte, 1) == 1 else { return .success }
            if byte == UInt8(ascii: "q") || byte == UInt8(ascii: "Q") { return .success }
            if byte == 3 { return .interrupted }
        }
    }

    private func refresh() {
        do {
            let daemon = try self.daemon ?? connection.connect()
            self.daemon = daemon
            last = try daemon.request("stats")
            problem = nil
        } catch {
            daemon = nil
            problem = "ltd unreachable (\((error as? ClientError).map(Format.describe) ?? "\(error)")); retrying each second"
        }
    }

    private func draw(_ screen: FullScreen) {
        let size = Terminal.size(fd: STDOUT_FILENO) ?? (80, 24)
        var lines = last.map(TopView.lines) ?? []
        lines.append("")
        lines.append(problem ?? "q quits; refreshed each second")
        var frame = FullScreen.home
        for (i, line) in lines.prefix(size.rows).enumerated() {
            frame += TopView.fit(line, size.columns) + FullScreen.eraseLine + (i == min(lines.count, size.rows) - 1 ? "" : "\r\n")
        }
        screen.write(frame + FullScreen.eraseBelow)
    }
}
