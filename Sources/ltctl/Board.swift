import ArgumentParser
import Foundation
import LTClient
import LTProtocol

extension ClassBoard.Order: ExpressibleByArgument {}

extension LTCtl {
    struct Board: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "A live full-screen class board: everyone's runs ranked by validation RMSE.",
            discussion: """
            Finished runs are ranked by their final validation RMSE, lowest first (equal values share a place); \
            below them the runs still going (with their progress), then cancelled ones, then the runs that diverged \
            or failed (with the reason), then damaged jobs. --sort rmse ranks by Keras's RMSE instead; --sort \
            iteration, name, owner or state only sorts. The same table is `ltctl list --all --sort val_rmse`.
            The board asks ltd for the list twice a second and redraws at most five times a second; it follows \
            terminal resizes and, when ltd restarts, says so and carries on. Keys: q (or Ctrl-C) quits.
            --once prints one frame as text (for scripts and cron mail); --json prints the ranking once as a JSON \
            array of status objects, each with `rank` (null when not ranked) and `standing` (finished, unmeasured \
            (finished without the metric), going, cancelled, failed, damaged). Needs a daemon with names per owner (ltd 0.3 or later).
            """)

        @OptionGroup var connection: ConnectionOptions
        @Option(help: "Rank by val_rmse (default) or rmse; or sort by iteration, name, owner or state.")
        var sort: ClassBoard.Order = .valRMSE
        @Flag(help: "Print one frame of the board as text and exit.") var once = false
        @Flag(help: "Print the ranking once as a JSON array and exit.") var json = false

        func run() throws {
            if !once, !json, isatty(STDOUT_FILENO) != 1 || isatty(STDIN_FILENO) != 1 {
                printError("board draws on a terminal, and \(isatty(STDOUT_FILENO) == 1 ? "stdin" : "stdout") is not one; use `ltctl board --once` (or --json) in scripts")
                throw ExitCode(ExitStatus.usage.rawValue)
            }
            try runReportingErrors {
                let daemon = try connection.connect()
                try daemon.require(.ownerNames, for: "show every user's jobs on a board")
                if once || json {
                    let rows = ClassBoard.rank(try BoardText.jobs(daemon), by: sort)
                    let out = BufferedOutput(fd: STDOUT_FILENO)
                    if json {
                        try out.write(BoardText.json(rows).serialized + "\n")
                    } else {
                        let palette = Palette(fd: STDOUT_FILENO)
                        try out.write(BoardText.frame(rows, by: sort, palette: palette, now: Date(),
                                                      width: Terminal.width(fd: STDOUT_FILENO)).joined(separator: "\n") + "\n")
                    }
                    try out.flush()
                    return .success
                }
                return try BoardSession(endpoint: try connection.endpoint(), order: sort, first: daemon).run()
            }
        }
    }
}

/// The board as text: the table `board` and `list --sort` print, its title line, and its JSON.
enum BoardText {
    /// Everyone's jobs, from `list --all`.
    static func jobs(_ daemon: Connection) throws -> [JobStatus] {
        let reply = try daemon.request("list", [("all", .bool(true))])
        return (reply["jobs"]?.arrayValue ?? []).compactMap { try? JobStatus(json: $0) }
    }

    /// What the NOTE column says of a row.
    static func note(_ row: ClassBoard.Row, by order: ClassBoard.Order) -> String {
        let s = row.status
        switch row.standing {
        case .finished, .cancelled: return ""
        case .unmeasured: return "no \(order.rawValue)"
        case .going: return s.state == .paused ? "paused" : "still running"
        case .failed, .damaged:
            return row.status.reason ?? s.message ?? s.state.rawValue
        }
    }

    /// The table: one line per job, the header first; cells never wider than `width` in all (the note is cut).
    static func table(_ rows: [ClassBoard.Row], by order: ClassBoard.Order, palette: Palette, width: Int? = nil) -> [String] {
        let header = ["#", "JOB", "STATE", "VAL RMSE", "KERAS RMSE", "ITERATION", "PROGRESS", "NOTE"]
        var cells: [[String]] = [header]
        for row in rows {
            let s = row.status
            cells.append([row.rank.map(String.init) ?? "", s.fullName ?? s.job, s.state.rawValue,
                          s.valRmse.map { Format.fixed($0, 4) } ?? "-", s.rmse.map { Format.fixed($0, 4) } ?? "-",
                          "\(s.iteration)/\(s.totalSteps)", Format.progress(s.progress, state: s.state.rawValue), note(row, by: order)])
        }
        let widths = header.indices.map { c in cells.map { $0[c].count }.max() ?? 0 }
        let stateColumn = widths[0] + 2 + widths[1] + 2
        return cells.enumerated().map { r, row in
            // Numbers right-aligned, words left-aligned, the note as it is; cut to `width`, then the state coloured.
            let padded = row.enumerated().map { c, cell in
                c == row.count - 1 ? cell : [0, 3, 4, 5, 6].contains(c) ? Format.padLeft(cell, widths[c]) : Format.padRight(cell, widths[c])
            }
            let line = fit(String(padded.joined(separator: "  ").reversed().drop { $0 == " " }.reversed()), width)
            if r == 0 { return palette.dim(line) }
            let state = row[2]
            guard line.count >= stateColumn + state.count else { return line }
            return String(line.prefix(stateColumn)) + palette.state(state) + String(line.dropFirst(stateColumn + state.count))
        }
    }

    /// `line` cut to `width` characters (the last one an ellipsis), or whole when `width` is nil or room enough.
    static func fit(_ line: String, _ width: Int?) -> String {
        guard let width, line.count > width else { return line }
        return String(line.prefix(max(0, width - 1))) + "…"
    }

    /// A title line counting the runs, then the table.
    static func frame(_ rows: [ClassBoard.Row], by order: ClassBoard.Order, palette: Palette, now: Date,
                      width: Int? = nil) -> [String] {
        func count(_ standings: Set<ClassBoard.Standing>) -> Int { rows.filter { standings.contains($0.standing) }.count }
        let clock = DateFormatter()
        clock.dateFormat = "HH:mm:ss"
        let time = clock.string(from: now)
        let how = order == .valRMSE || order == .rmse ? "ranked by \(order.rawValue), lowest first" : "sorted by \(order.rawValue)"
        let title = "Class board: \(Format.count(rows.count, "run")); \(count([.finished, .unmeasured])) finished, "
            + "\(count([.going])) still going, \(count([.failed])) diverged or failed; \(how); \(time)"
        let heading = palette.bold(fit(title, width))
        if rows.isEmpty { return [heading, "", "No jobs yet. Start one with: ltctl start job1 --example colab"] }
        return [heading, ""] + table(rows, by: order, palette: palette, width: width)
    }

    /// The ranking as JSON: each job's status object with `rank` and `standing`.
    static func json(_ rows: [ClassBoard.Row]) -> JSONValue {
        .array(rows.map { row in
            let status = Format.statusJSON(row.status.json)
            guard case .object(let members) = status else { return status }
            return .object(members + [("rank", row.rank.map { JSONValue($0) } ?? .null), ("standing", .string(row.standing.rawValue))])
        })
    }
}

/// One live `ltctl board`: polls `list --all`, redraws, reads q, reconnects when ltd restarts.
final class BoardSession {
    let endpoint: Endpoint
    let order: ClassBoard.Order
    private var daemon: Connection?
    private var rows: [ClassBoard.Row] = []
    private var notice: String?

    /// How often the board asks ltd for the list, and the least time between two redraws.
    static let pollInterval = 0.5
    static let drawInterval = 0.2

    init(endpoint: Endpoint, order: ClassBoard.Order, first: Connection) {
        self.endpoint = endpoint
        self.order = order
        daemon = first
    }

    func run() throws -> ExitStatus {
        let signals = PendingSignals([SIGWINCH, SIGINT, SIGTERM, SIGHUP])
        let screen = try FullScreen(alternate: true)
        defer { screen.restore() }
        let palette = Palette(fd: STDOUT_FILENO)
        var lastPoll = 0.0, lastDraw = 0.0, dirty = true
        while true {
            let now = Date().timeIntervalSince1970
            if now - lastPoll >= Self.pollInterval {
                refresh()
                lastPoll = now
                dirty = true
            }
            if dirty, now - lastDraw >= Self.drawInterval {
                let size = Terminal.size(fd: STDOUT_FILENO) ?? (80, 24)
                screen.write(render(columns: size.columns, rows: size.rows, palette: palette))
                lastDraw = now
                dirty = false
            }
            var input = pollfd(fd: STDIN_FILENO, events: Int16(POLLIN), revents: 0)
            let ready = poll(&input, 1, 100)
            for signal in signals.take() {
                if signal == SIGWINCH { dirty = true; lastDraw = 0 } else { screen.restore(); return .interrupted }
            }
            if ready > 0, input.revents & Int16(POLLIN | POLLHUP) != 0 {
                var buffer = [UInt8](repeating: 0, count: 64)
                let n = read(STDIN_FILENO, &buffer, buffer.count)
                if n <= 0 || buffer.prefix(n).contains(UInt8(ascii: "q")) || buffer.prefix(n).contains(UInt8(ascii: "Q")) { break }
                if buffer.prefix(n).contains(3) { screen.restore(); return .interrupted }
            }
        }
        screen.restore()
        return .success
    }

    /// Asks for the list again, reconnecting if need be; while ltd is unreachable the last list stays, with a notice.
    private func refresh() {
        do {
            let daemon = try self.daemon ?? Connection(endpoint: endpoint, environment: ProcessInfo.processInfo.environment)
            self.daemon = daemon
            rows = ClassBoard.rank(try BoardText.jobs(daemon), by: order)
            notice = nil
        } catch {
            daemon = nil
            let why = (error as? ClientError).map(Format.describe) ?? "\(error)"
            notice = "ltd is unreachable; retrying twice a second, the board shows the last list. At \(endpoint): \(why)"
        }
    }

    /// The screen: exactly `rows` lines, none wider than `columns`.
    private func render(columns: Int, rows height: Int, palette: Palette) -> String {
        func fit(_ s: String) -> String { BoardText.fit(s, columns) }
        let body = BoardText.frame(rows, by: order, palette: palette, now: Date(), width: columns)
        let footer = [notice.map { palette.red(fit($0)) } ?? "", palette.dim(fit("q quit"))]
        var lines = Array(body.prefix(max(0, height - footer.count)))
        // The title and header are kept; a class larger than the screen is cut at the bottom, and says so.
        if body.count > lines.count, let last = lines.indices.last {
            lines[last] = palette.dim(fit("… \(body.count - lines.count + 1) more; widen or heighten the terminal, or use ltctl board --once"))
        }
        lines += Array(repeating: "", count: max(0, height - footer.count - lines.count)) + footer
        var screen = FullScreen.home
        for (i, line) in lines.enumerated() {
            screen += line + FullScreen.eraseLine + (i == lines.count - 1 ? "" : "\r\n")
        }
        return screen + FullScreen.eraseBelow
    }
}
