import ArgumentParser
import Foundation
import LTClient
import LTProtocol

/// What `tail` (and `start --follow`, `demo`) should print.
struct TailSettings {
    var since: Int? = nil
    var last: Int? = nil
    var every = 1
    var noFollow = false
    var json = false
    /// Full detail even on a narrow terminal.
    var wide = false
    /// Wait for a job that does not exist yet, as `tail -F` waits for a file.
    var wait = false
}

struct TailOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Start at this event sequence number (default 1: replay everything).", valueName: "seq"))
    var since: Int?
    @Option(help: ArgumentHelp("Start with the last N events.", valueName: "n"))
    var last: Int?
    @Option(help: ArgumentHelp("Show only every K-th step (iterations divisible by K); other events always show.", valueName: "k"))
    var every: Int = 1
    @Flag(help: "Stop at the job's latest event at the time of subscribing instead of following it live.")
    var noFollow = false
    @Flag(help: "Print the daemon's NDJSON event lines byte for byte (fast; for jq and scripts).")
    var json = false
    @Flag(help: "Every column and the full epoch line, even when the terminal is narrower (the default when stdout is not a terminal).")
    var wide = false
    @Flag(help: "If the job does not exist yet, wait for it to be started (like tail -F) instead of failing.")
    var wait = false

    func validate() throws {
        if since != nil && last != nil { throw ValidationError("--since and --last exclude each other") }
        if let since, since < 1 { throw ValidationError("--since must be at least 1") }
        if let last, last < 1 { throw ValidationError("--last must be at least 1") }
        if every < 1 { throw ValidationError("--every must be at least 1") }
    }

    var settings: TailSettings { TailSettings(since: since, last: last, every: every, noFollow: noFollow, json: json, wide: wide, wait: wait) }
}

extension LTCtl {
    struct Tail: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Replay a job's events, then follow it live until it ends.",
            discussion: """
            One line per optimizer step: epoch/step, iteration, the dataset rows of the batch, w and b after the \
            update, this batch's loss (before the update), Keras's running RMSE for the epoch (what fit prints; \
            measured before each update) and the validation RMSE after the update; a summary line per epoch. \
            Colour only on a terminal without NO_COLOR; a progress bar on stderr for long jobs when stderr is a terminal.
            On a terminal the table fits its width: columns are sized to their content, and on a narrow one the \
            batch loss, then the step and rows columns give way (--wide keeps them all); epoch lines wrap.
            --json prints the daemon's event lines unchanged (not the `subscribed` reply).
            --wait lets a second terminal start tailing before the job is started in the first.
            Exit status: 0 finished (or --no-follow done), 3 cancelled, 4 diverged, 5 failed; see `ltctl --help`.
            """)

        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var job: JobArgument
        @OptionGroup var options: TailOptions

        func run() throws {
            try runReportingErrors {
                try Tailer(connection: try connection.connect(), job: job.name, options: options.settings).run()
            }
        }
    }
}

/// Subscribes to a job and prints its events until it ends (or until the seq current at subscribe time).
struct Tailer {
    let connection: Connection
    let job: String
    let options: TailSettings

    init(connection: Connection, job: String, options: TailSettings) {
        self.connection = connection
        self.job = job
        self.options = options
    }

    func run() throws -> ExitStatus {
        var from = options.since ?? 1
        var status: JSONValue?
        if options.wait { try waitForJob() }
        if !options.json || options.last != nil {
            status = try connection.request("status", [("job", .string(job))])["status"]
        }
        if let last = options.last, let seq = status?["seq"]?.intValue { from = max(1, seq - last + 1) }
        // With --no-follow, a filtered-out last event would leave us waiting for a later one; filter here instead.
        let filterHere = options.noFollow && options.every > 1
        let subscription = try connection.subscribe(job: job, from: from, every: filterHere ? 1 : options.every)
        if subscription.isComplete { return ExitStatus.forFinalState(JobState(rawValue: subscription.state)) }
        let stopSeq: Int? = options.noFollow ? subscription.lastSeq : nil
        if let stopSeq, stopSeq < from { return .success }
        if options.json {
            return try relayRaw(stopSeq: stopSeq, every: filterHere ? options.every : 1)
        }
        return try printHuman(status: status, stopSeq: stopSeq, every: filterHere ? options.every : 1)
    }

    /// Polls `status` until the job exists, saying once on stderr that it waits (stdout stays the stream's own).
    private func waitForJob() throws {
        var announced = false
        while true {
            do {
                _ = try connection.request("status", [("job", .string(job))])
                return
            } catch let error as ClientError where error.daemonCode == .unknownJob {
                if !announced {
                    FileHandle.standardError.write(Data("ltctl: waiting for job \(job) to be started (Ctrl-C to stop)\n".utf8))
                    announced = true
                }
                usleep(200_000)
            }
        }
    }

    /// The `--json` path: hands whole runs of lines from the socket buffer to write(2), looking only at each line's
    /// first bytes (type, and seq when needed). Parses just the `end` line, for the exit status.
    private func relayRaw(stopSeq: Int?, every: Int) throws -> ExitStatus {
        let out = BufferedOutput(fd: STDOUT_FILENO)
        let reader = connection.reader
        var lastSeq = 0
        while let span = try reader.completeLines() {
            guard let base = span.baseAddress else { break }
            var segmentStart = 0
            var position = 0
            var result: ExitStatus?
            while position < span.count {
                guard let hit = memchr(base + position, 0x0A, span.count - position) else { break }
                let lineEnd = base.distance(to: UnsafeRawPointer(hit)) + 1
                let line = UnsafeRawBufferPointer(rebasing: span[position..<(lineEnd - 1)])
                var parsed: JSONValue?
                func parse() throws -> JSONValue {
                    if let parsed { return parsed }
                    let value = try JSONParser.parseOrThrow(line, path: connection.socketPath)
                    parsed = value
                    return value
                }
                let type = try EventLine.type(of: line).map(String.init) ?? parse()["type"]?.stringValue ?? ""
                if let stopSeq {
                    let seq = try EventLine.seq(of: line) ?? parse()["seq"]?.intValue ?? 0
                    if seq > stopSeq { result = .success; break }
                }
                if type == "error" {
                    try out.writeAll(UnsafeRawBufferPointer(rebasing: span[segmentStart..<position]))
                    throw Connection.daemonError(try parse())
                }
                if every > 1, type == "step", let iteration = try parse()["iteration"]?.intValue, iteration % every != 0 {
                    try out.writeAll(UnsafeRawBufferPointer(rebasing: span[segmentStart..<position]))
                    segmentStart = lineEnd
                }
                position = lineEnd
                if type == "end" {
                    result = ExitStatus.forFinalState(try parse()["state"]?.stringValue.flatMap(JobState.init(rawValue:)))
                    break
                }
                if let stopSeq, (try EventLine.seq(of: line) ?? parse()["seq"]?.intValue ?? 0) >= stopSeq {
                    result = .success
                    break
                }
                if position >= span.count, let seq = EventLine.seq(of: line) { lastSeq = seq }
            }
            try out.writeAll(UnsafeRawBufferPointer(rebasing: span[segmentStart..<position]))
            reader.consume(position)
            if let result { return result }
        }
        throw ClientError.protocolViolation(path: connection.socketPath,
            detail: "the connection ended before the job's end event (last seq \(lastSeq)); resume with `ltctl tail \(job) --since \(lastSeq + 1)`")
    }

    private func printHuman(status: JSONValue?, stopSeq: Int?, every: Int) throws -> ExitStatus {
        let out = BufferedOutput(fd: STDOUT_FILENO)
        let printer = EventPrinter(job: job, status: status, palette: Palette(fd: STDOUT_FILENO),
                                   width: options.wide ? nil : Terminal.width(fd: STDOUT_FILENO))
        let progress = ProgressBar(total: status?["total_steps"]?.intValue ?? 0)
        let stdoutIsTerminal = out.isTerminal
        let reader = connection.reader
        var lastSeq = 0
        while true {
            if !reader.hasBufferedLine {
                // About to wait for the daemon: show what we have.
                // The bar shares the terminal only when stdout is one too: then erase it around our lines.
                if stdoutIsTerminal { progress.clear() }
                try out.flush()
                progress.draw(force: stdoutIsTerminal)
            }
            guard let line = try reader.readLine() else { break }
            let value = try JSONParser.parseOrThrow(line, path: connection.socketPath)
            if value["type"]?.stringValue == "error" { throw Connection.daemonError(value) }
            let event = try Event.decode(value, path: connection.socketPath)
            if let stopSeq, event.seq > stopSeq { break }
            lastSeq = event.seq
            if event.type == .step, let iteration = event.int("iteration") {
                progress.update(iteration: iteration, epoch: event.int("epoch") ?? 0)
                if iteration % every != 0 { continue }
            }
            if event.type == .start, let total = event.int("total_steps") { progress.total = total }
            try out.write(printer.render(event))
            if event.type == .end || (stopSeq.map { event.seq >= $0 } ?? false) {
                progress.finish()
                try out.flush()
                return event.type == .end ? ExitStatus.forFinalState(event.state) : .success
            }
        }
        progress.finish()
        try out.flush()
        if stopSeq != nil { return .success }
        throw ClientError.protocolViolation(path: connection.socketPath,
            detail: "the connection ended before the job's end event (last seq \(lastSeq)); resume with `ltctl tail \(job) --since \(lastSeq + 1)`")
    }
}

extension Event {
    /// An event from a parsed line, or a protocol error naming the socket.
    static func decode(_ value: JSONValue, path: String) throws -> Event {
        do {
            return try Event(json: value)
        } catch {
            throw ClientError.protocolViolation(path: path, detail: "not an event: \(error)")
        }
    }
}

extension JSONParser {
    static func parseOrThrow(_ bytes: some Collection<UInt8>, path: String) throws -> JSONValue {
        do {
            return try parse(bytes)
        } catch {
            throw ClientError.protocolViolation(path: path, detail: "invalid JSON: \(error)")
        }
    }
}

/// A progress bar on stderr for long jobs, only when stderr is a terminal. Redrawn at most ten times a second.
final class ProgressBar {
    var total: Int
    private let enabled: Bool
    private var iteration = 0
    private var epoch = 0
    private var visible = false
    private var lastDraw = 0.0
    static let minimumSteps = 500

    init(total: Int) {
        self.total = total
        enabled = isatty(STDERR_FILENO) == 1
    }

    private var active: Bool { enabled && total >= Self.minimumSteps }

    func update(iteration: Int, epoch: Int) {
        self.iteration = iteration
        self.epoch = epoch
    }

    /// Draws at most ten times a second, unless `force` (the lines just printed to the same terminal erased it).
    func draw(force: Bool = false) {
        guard active else { return }
        let now = Date().timeIntervalSince1970
        guard force || now - lastDraw >= 0.1 else { return }
        lastDraw = now
        let fraction = min(1, Double(iteration) / Double(max(total, 1)))
        let width = 30
        let filled = Int(fraction * Double(width))
        let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled)
        let text = "\r\u{1B}[K[\(bar)] \(Format.fixed(fraction * 100, 1))%  \(iteration)/\(total) steps  epoch \(epoch)"
        FileHandle.standardError.write(Data(text.utf8))
        visible = true
    }

    func clear() {
        guard visible else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
        visible = false
    }

    func finish() { clear() }
}
