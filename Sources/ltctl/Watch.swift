import ArgumentParser
import Foundation
import LTClient
import LTPlot
import LTProtocol

extension LTCtl {
    struct Watch: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "A live full-screen view of one job: progress, weights, the last steps and the RMSE chart.",
            discussion: """
            The screen shows the job's state, optimizer, epoch/step/iteration with a progress bar and steps per second; \
            the latest w and b beside the least-squares optimum; the last steps as a table that fits the screen; and \
            Keras's running RMSE against the validation RMSE after each update, growing as the run goes.
            Keys: p pause, r resume, s one step, q (or Ctrl-C) quit. Only the job's owner or root may pause, resume \
            and step; anyone else is told why not, on the screen.
            The view redraws at most ten times a second however fast the job runs, follows terminal resizes, keeps \
            the final view when the job ends (until q), and when ltd restarts it reconnects and continues from the \
            last event it saw, without a gap. Jobs of more than 5,000 steps are charted from every K-th step.
            --plain draws nothing: it prints a line of text per state change and epoch, and a progress line at most \
            every two seconds (for screen readers and braille displays). Colour follows NO_COLOR.
            Needs a terminal; in scripts use `ltctl tail` (or `ltctl tail --json`).
            Exit status after q: the job's final state as for tail (0 while it still runs); 130 after Ctrl-C; \
            76 if ltd was unreachable when you quit; 64 without a terminal.
            """)

        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var job: JobArgument
        @Flag(help: "Print plain lines of text instead of drawing a screen (no cursor addressing).")
        var plain = false
        @Flag(help: "If the job does not exist yet, wait for it to be started.")
        var wait = false
        @Flag(help: "Draw the chart with ASCII marks (* and o) instead of braille dots.")
        var ascii = false

        func run() throws {
            guard isatty(STDOUT_FILENO) == 1, isatty(STDIN_FILENO) == 1 else {
                printError("watch draws on a terminal, and \(isatty(STDOUT_FILENO) == 1 ? "stdin" : "stdout") is not one; "
                    + "use `ltctl tail \(job.name)` instead (or `ltctl tail \(job.name) --json` in scripts)")
                throw ExitCode(ExitStatus.usage.rawValue)
            }
            try runReportingErrors {
                let session = WatchSession(endpoint: try connection.endpoint(), job: job.name, plain: plain, ascii: ascii)
                return try session.run(wait: wait)
            }
        }
    }
}

/// What `watch` knows of the job, built from its events.
struct WatchModel {
    let job: String
    var state = "?"
    var optimizer = "?"
    var precisionIsFloat32 = true
    var epochs = 0, stepsPerEpoch = 0, totalSteps = 0
    var iteration = 0, epoch = 0, step = 0
    var w: JSONValue?, b: JSONValue?
    var optimum: (w: Double, b: Double)?
    var message: String?
    var ended = false
    /// The latest step events, newest last (at most `keptSteps`).
    var recentSteps: [JSONValue] = []
    static let keptSteps = 500
    var kerasRMSE: [Double] = []
    var validationRMSE: [Double] = []
    var stepEpochs: [Int] = []
    /// The chart in words.
    var trend: String { TrendSummary.rmse(keras: kerasRMSE, validation: validationRMSE, epochs: stepEpochs) }
    var lastSeq = 0
    /// (time, iteration) pairs of the last few seconds, for steps per second.
    var pace: [(time: Double, iteration: Int)] = []

    init(job: String, status: JSONValue?) {
        self.job = job
        if let status {
            state = status["state"]?.stringValue ?? state
            epochs = status["epochs"]?.intValue ?? 0
            stepsPerEpoch = status["steps_per_epoch"]?.intValue ?? 0
            totalSteps = status["total_steps"]?.intValue ?? 0
            precisionIsFloat32 = status["precision"]?.stringValue != "float64"
        }
    }

    var stepsPerSecond: Double? {
        guard state == "running", let first = pace.first, let last = pace.last, last.time - first.time >= 0.5 else { return nil }
        return Double(last.iteration - first.iteration) / (last.time - first.time)
    }

    /// Takes one event; returns a line for `--plain` when the event is worth saying.
    @discardableResult
    mutating func apply(_ event: Event, now: Double) -> String? {
        lastSeq = max(lastSeq, event.seq)
        let e = event.raw
        switch event.type {
        case .start:
            optimizer = EventPrinter.describeOptimizer(e["optimizer"])
            epochs = e["epochs"]?.intValue ?? epochs
            stepsPerEpoch = e["steps_per_epoch"]?.intValue ?? stepsPerEpoch
            totalSteps = e["total_steps"]?.intValue ?? totalSteps
            precisionIsFloat32 = e["precision"]?.stringValue != "float64"
            w = e["w"]; b = e["b"]
            if let o = e["optimum"], let ow = o["w"]?.doubleValue, let ob = o["b"]?.doubleValue { optimum = (ow, ob) }
            return "\(job): \(optimizer); \(Format.count(epochs, "epoch")) × \(Format.count(stepsPerEpoch, "step")) = \(totalSteps) steps; initial w \(Format.exact(w)), b \(Format.exact(b))"
        case .step:
            iteration = e["iteration"]?.intValue ?? iteration
            epoch = e["epoch"]?.intValue ?? epoch
            step = e["step"]?.intValue ?? step
            w = e["w_after"]; b = e["b_after"]
            recentSteps.append(e)
            if recentSteps.count > Self.keptSteps { recentSteps.removeFirst(recentSteps.count - Self.keptSteps) }
            kerasRMSE.append(e["rmse"]?.doubleValue ?? .nan)
            validationRMSE.append(e["val_rmse"]?.doubleValue ?? .nan)
            stepEpochs.append(epoch)
            pace.append((now, iteration))
            pace.removeAll { now - $0.time > 2 }
            return nil
        case .epoch:
            return "epoch \(e["epoch"]?.intValue ?? 0) of \(epochs) done: keras rmse \(fixed(e["rmse"], 4)), validation rmse \(fixed(e["val_rmse"], 4)), w \(fixed(e["w"], 6)), b \(fixed(e["b"], 6))"
        case .state:
            state = e["state"]?.stringValue ?? state
            message = e["message"]?.stringValue
            return "\(job) is \(state)" + (iteration > 0 ? " after iteration \(iteration)" : "") + (message.map { ": \($0)" } ?? "")
        case .end:
            state = e["state"]?.stringValue ?? state
            ended = true
            return "In words: \(trend).\n\(job) ended \(state) after \(Format.count(e["iteration"]?.intValue ?? iteration, "step")): w \(Format.exact(e["w"])), b \(Format.exact(e["b"]))"
        }
    }

    func fixed(_ value: JSONValue?, _ decimals: Int) -> String { Format.fixed(value, decimals, float32: precisionIsFloat32) }

    var progressLine: String {
        let percent = totalSteps > 0 ? Format.fixed(Double(iteration) / Double(totalSteps) * 100, 1) + "%" : "?"
        let last = recentSteps.last
        return "iteration \(iteration) of \(totalSteps) (\(percent)): w \(fixed(w, 6)), b \(fixed(b, 6)), keras rmse \(fixed(last?["rmse"], 4)), validation rmse \(fixed(last?["val_rmse"], 4))"
    }
}

/// Draws a `WatchModel` as a screen of exactly `rows` lines, none wider than `columns`.
enum WatchScreen {
    static func render(_ m: WatchModel, columns: Int, rows: Int, palette: Palette, notice: String?, connection: String?,
                       ascii: Bool) -> String {
        func fit(_ s: String) -> String { s.count <= columns ? s : String(s.prefix(max(0, columns - 1))) + "…" }
        var lines: [String] = []
        let where_ = "epoch \(m.epoch)/\(m.epochs)  step \(m.step)/\(m.stepsPerEpoch)  iteration \(m.iteration)/\(m.totalSteps)"
        lines.append(fit("\(m.job)  \(m.state)  \(where_)  \(m.optimizer)"))
        let fraction = m.totalSteps > 0 ? min(1, Double(m.iteration) / Double(m.totalSteps)) : 0
        let rate = m.stepsPerSecond.map { "  \(Format.fixed($0, $0 < 100 ? 1 : 0)) steps/s" } ?? ""
        let tail = " \(Format.fixed(fraction * 100, 1))%" + rate
        let barWidth = max(10, min(50, columns - tail.count - 2))
        let filled = Int(fraction * Double(barWidth))
        lines.append(fit("[" + String(repeating: "█", count: filled) + String(repeating: "░", count: barWidth - filled) + "]" + tail))
        var weights = "w \(m.fixed(m.w, 6))  b \(m.fixed(m.b, 6))"
        if let optimum = m.optimum {
            weights += "    least-squares optimum w \(Format.fixed(optimum.w, 4))  b \(Format.fixed(optimum.b, 4))"
        }
        lines.append(fit(weights))
        let footer = [fit(connection ?? notice ?? (m.ended ? "the job has ended; q quits" : "")),
                      fit("p pause  r resume  s step  q quit")]
        var room = rows - lines.count - footer.count - 1
        // The last steps, then the chart below them when there is room for one worth reading.
        let chartRows = room >= 16 ? min(16, room - 6) : 0
        let tableRows = max(0, room - (chartRows > 0 ? chartRows + 5 : 0))
        lines.append("")
        if tableRows >= 2 {
            let printer = EventPrinter(job: m.job, status: .object([
                ("epochs", JSONValue(m.epochs)), ("steps_per_epoch", JSONValue(m.stepsPerEpoch)), ("total_steps", JSONValue(m.totalSteps)),
                ("precision", .string(m.precisionIsFloat32 ? "float32" : "float64")),
            ]), palette: Palette(enabled: false), width: columns)
            lines.append(fit(printer.tableHeader()))
            for step in m.recentSteps.suffix(tableRows - 1) { lines.append(fit(printer.row(step))) }
            room -= 1 + min(tableRows - 1, m.recentSteps.count)
            lines += Array(repeating: "", count: max(0, tableRows - 1 - m.recentSteps.count))
        }
        if chartRows > 0 {
            if m.kerasRMSE.isEmpty {
                lines.append("(the chart starts with the first step)")
            } else {
                lines.append(fit("RMSE per iteration: " + m.trend))
                let chart = TerminalChart.render(
                    series: [("Keras RMSE (running, before each update)", m.kerasRMSE), ("validation RMSE (after the update)", m.validationRMSE)],
                    width: columns, height: chartRows, color: palette.enabled, ascii: ascii)
                lines += chart.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            }
        }
        let body = lines.prefix(max(0, rows - footer.count))
        let padding = Array(repeating: "", count: max(0, rows - footer.count - body.count))
        let all = Array(body) + padding + footer
        var screen = FullScreen.home
        for (i, line) in all.enumerated() {
            var text = line
            if i == 0 { text = text.replacingOccurrences(of: "  \(m.state)  ", with: "  \(palette.state(m.state))  ") }
            if i == 0 { text = palette.bold(String(text.prefix(m.job.count))) + text.dropFirst(m.job.count) }
            if i == all.count - 2, !line.isEmpty, connection != nil || notice?.hasPrefix("!") == true { text = palette.red(text) }
            screen += text + FullScreen.eraseLine + (i == all.count - 1 ? "" : "\r\n")
        }
        return screen + FullScreen.eraseBelow
    }
}

/// One `ltctl watch`: the stream connection, the keyboard, the signals and the screen, in one poll loop.
final class WatchSession {
    let endpoint: Endpoint
    let job: String
    let plain: Bool
    private var model: WatchModel
    private var stream: Connection?
    private var control: Connection?
    private var every = 1
    private var notice: String?
    private var lostSince: Double?
    private var lastAttempt = 0.0
    private var lastPlainProgress = 0.0
    private var lastPrintedIteration = 0

    let ascii: Bool

    init(endpoint: Endpoint, job: String, plain: Bool, ascii: Bool) {
        self.endpoint = endpoint
        self.ascii = ascii
        self.job = job
        self.plain = plain
        model = WatchModel(job: job, status: nil)
    }

    private static func now() -> Double { Date().timeIntervalSince1970 }

    private func connect() throws -> Connection { try Connection(endpoint: endpoint, environment: ProcessInfo.processInfo.environment) }

    enum Ending { case quit, interrupted, terminated }

    func run(wait: Bool) throws -> ExitStatus {
        let first = try connect()
        let status = try waitForStatus(first, wait: wait)
        model = WatchModel(job: job, status: status)
        // Long jobs are charted from every K-th step: the screen has a few hundred columns at most.
        every = max(1, (model.totalSteps + 4_999) / 5_000)
        _ = try first.subscribe(job: job, from: 1, every: every)
        stream = first

        let signals = PendingSignals([SIGWINCH, SIGINT, SIGTERM, SIGHUP])
        let screen = try FullScreen(alternate: !plain)
        defer { screen.restore() }
        let palette = Palette(fd: STDOUT_FILENO)
        var dirty = true, lastDraw = 0.0
        var ending: Ending?
        while ending == nil {
            try drainBuffered(screen: screen)
            let now = Self.now()
            if !plain, dirty || lostSince != nil, now - lastDraw >= 0.1 {
                let size = Terminal.size(fd: STDOUT_FILENO) ?? (80, 24)
                screen.write(WatchScreen.render(model, columns: size.columns, rows: size.rows, palette: palette,
                                                notice: notice, connection: lostMessage(now), ascii: ascii))
                lastDraw = now
                dirty = false
            }
            if plain, !model.ended, model.iteration != lastPrintedIteration, now - lastPlainProgress >= 2 {
                screen.write(model.progressLine + "\n")
                lastPlainProgress = now
                lastPrintedIteration = model.iteration
            }
            var fds = [pollfd(fd: STDIN_FILENO, events: Int16(POLLIN), revents: 0)]
            if let stream { fds.append(pollfd(fd: stream.fd, events: Int16(POLLIN), revents: 0)) }
            let ready = poll(&fds, nfds_t(fds.count), 100)
            for signal in signals.take() {
                switch signal {
                case SIGWINCH: dirty = true; lastDraw = 0
                case SIGINT: ending = .interrupted
                default: ending = .terminated
                }
            }
            if ending != nil { break }
            if ready > 0, fds[0].revents & Int16(POLLIN | POLLHUP) != 0 {
                ending = handleKeys()
                dirty = true
            }
            if ready > 0, fds.count > 1, fds[1].revents != 0 {
                readStream(screen: screen)
                dirty = true
            }
            if stream == nil, !model.ended { reconnect() }
        }
        screen.restore()
        return finish(ending ?? .quit)
    }

    /// `status`, waiting (as `tail --wait`) for a job that does not exist yet.
    private func waitForStatus(_ connection: Connection, wait: Bool) throws -> JSONValue? {
        var announced = false
        while true {
            do {
                return try connection.request("status", [("job", .string(job))])["status"]
            } catch let error as ClientError where wait && error.daemonCode == .unknownJob {
                if !announced { printError("waiting for job \(job) to be started (Ctrl-C to stop)"); announced = true }
                usleep(200_000)
            }
        }
    }

    private func lostMessage(_ now: Double) -> String? {
        guard let lostSince else { return nil }
        return "ltd is unreachable at \(endpoint) (\(Int(now - lostSince)) s); reconnecting and resuming after event \(model.lastSeq)…"
    }

    /// Handles the lines already buffered, a bounded number per turn so keys and redraws stay prompt.
    private func drainBuffered(screen: FullScreen) throws {
        guard let stream else { return }
        var handled = 0
        while handled < 20_000, stream.reader.hasBufferedLine {
            guard let line = try? stream.reader.readLine() else { break }
            handle(line, screen: screen)
            handled += 1
        }
    }

    private func readStream(screen: FullScreen) {
        guard let stream else { return }
        do {
            if let line = try stream.reader.readLine() {
                handle(line, screen: screen)
                return
            }
        } catch {}
        self.stream = nil
        if !model.ended { lostSince = Self.now() }
    }

    private func handle(_ line: [UInt8], screen: FullScreen) {
        guard let value = try? JSONParser.parse(line) else { return }
        if value["type"]?.stringValue == "error" {
            notice = "! " + (value["message"]?.stringValue ?? "an error from ltd")
            return
        }
        guard let event = try? Event(json: value), event.seq > model.lastSeq else { return }
        if let said = model.apply(event, now: Self.now()), plain { screen.write(said + "\n") }
    }

    private func reconnect() {
        let now = Self.now()
        guard now - lastAttempt >= 0.5 else { return }
        lastAttempt = now
        guard let connection = try? connect(),
              (try? connection.subscribe(job: job, from: model.lastSeq + 1, every: every)) != nil else { return }
        stream = connection
        control = nil
        lostSince = nil
        notice = "reconnected; continuing after event \(model.lastSeq)"
    }

    /// Reads the pending keys; returns how to end, if a key said so.
    private func handleKeys() -> Ending? {
        var buffer = [UInt8](repeating: 0, count: 64)
        let n = read(STDIN_FILENO, &buffer, buffer.count)
        guard n > 0 else { return .quit }
        for key in buffer.prefix(n) {
            switch key {
            case UInt8(ascii: "q"), UInt8(ascii: "Q"): return .quit
            case 3: return .interrupted
            case UInt8(ascii: "p"): act("pause", [])
            case UInt8(ascii: "r"): act("resume", [])
            case UInt8(ascii: "s"): act("step", [("count", JSONValue(1))])
            default: break
            }
        }
        return nil
    }

    /// Sends a control request on a connection of its own, so its reply never mixes with the stream.
    private func act(_ op: String, _ fields: [(key: String, value: JSONValue)]) {
        do {
            if control == nil { control = try connect() }
            guard let control else { return }
            let reply = try control.request(op, [("job", .string(job))] + fields)
            let done = ["pause": "pause requested", "resume": "resumed", "step": "one step requested"][op] ?? op
            notice = "\(done) (state \(reply["state"]?.stringValue ?? "?"))"
        } catch let error as ClientError {
            notice = "! " + Format.describe(error)
            if error.daemonCode == nil { control = nil }
        } catch {
            notice = "! \(error)"
        }
    }

    /// Says why watching ended, on the normal screen, and picks the exit status.
    private func finish(_ ending: Ending) -> ExitStatus {
        let state = JobState(rawValue: model.state)
        let where_ = "\(model.state), iteration \(model.iteration) of \(model.totalSteps)"
        switch ending {
        case .interrupted:
            print("ltctl watch: interrupted; \(job) is \(where_)")
            return .interrupted
        case .terminated:
            print("ltctl watch: stopped by a signal; \(job) is \(where_)")
            return .interrupted
        case .quit:
            if lostSince != nil {
                print("ltctl watch: quit while ltd was unreachable at \(endpoint); last seen: \(job) \(where_) (event \(model.lastSeq))")
                return .protocolError
            }
            if model.ended {
                print("ltctl watch: \(job) ended \(model.state) after \(Format.count(model.iteration, "step")): w \(Format.exact(model.w)), b \(Format.exact(model.b))")
                return ExitStatus.forFinalState(state)
            }
            print("ltctl watch: left \(job) (\(where_)); it goes on without you")
            return .success
        }
    }
}
