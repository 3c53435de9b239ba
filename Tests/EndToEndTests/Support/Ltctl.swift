import Foundation
import LTClient
import LTProtocol

/// The real `ltctl` run against a test daemon.
extension DaemonProcess {
    /// A daemon for the ltctl tests: only warnings in its log, which nobody reads unless a test fails.
    static func launchForLtctl(tag: String = "ctl") throws -> DaemonProcess {
        try launch(tag: tag, arguments: ["--log-level", "warning"])
    }

    /// Runs ltctl with LTD_SOCKET pointing at this daemon and NO_COLOR set; `environment` adds to or overrides that.
    @discardableResult
    func ltctl(_ arguments: [String], stdin: Data? = nil, environment extra: [String: String] = [:],
               stderr errorOutput: Command.ErrorOutput = .separate, timeout: Duration = .seconds(60)) throws -> CommandResult {
        var environment = ProcessInfo.processInfo.environment
        environment["LTD_SOCKET"] = socketPath
        environment["NO_COLOR"] = "1"
        environment.merge(extra) { $1 }
        return try Command.run([Paths.ltctl] + arguments, environment: environment, stdin: stdin,
                               stderr: errorOutput, timeout: timeout)
    }

    /// Starts the classic twelve-point job (epochs 4, batch 4); `extra` adds ltctl start options.
    func startColab(_ name: String, extra: [String] = []) throws {
        let result = try ltctl(["start", name, "--example", "colab"] + extra)
        guard result.status == 0 else { throw HarnessFailure("ltctl start failed (\(result.status)): \(result.stderr)") }
    }

    /// Starts the twelve-point job and waits for its end; throws unless it finished (tail exits 0 only then).
    func runColabToTheEnd(_ name: String) throws {
        try startColab(name)
        let status = try waitFinished(name)
        guard status == 0 else { throw HarnessFailure("ltctl tail \(name) exited \(status): the job did not finish") }
    }

    /// Waits for a job to reach a final state by tailing it (tail exits then); returns tail's exit status.
    @discardableResult
    func waitFinished(_ name: String) throws -> Int32 {
        try ltctl(["tail", name, "--json"]).status
    }

    /// The job's events exactly as a raw protocol subscription from seq 1 delivers them, up to and including `end`.
    func rawSubscription(_ name: String) throws -> Data {
        let connection = try Connection(socketPath: socketPath)
        _ = try connection.subscribe(job: name, from: 1)
        var bytes = Data()
        while let line = try connection.reader.readLine() {
            bytes.append(contentsOf: line)
            bytes.append(0x0A)
            if (try? Event(line: line))?.type == .end { break }
        }
        return bytes
    }
}

/// The files under Tests/EndToEndTests that tests compare against.
enum Fixtures {
    /// A snapshot file under Snapshots/. With LTCTL_UPDATE_SNAPSHOTS=1 the actual text is written instead
    /// (review it by hand against the golden trace before committing).
    static func snapshot(_ name: String, actual: String) throws -> String {
        let url = Paths.endToEndTests.appendingPathComponent("Snapshots").appendingPathComponent(name)
        if ProcessInfo.processInfo.environment["LTCTL_UPDATE_SNAPSHOTS"] == "1" {
            try actual.write(to: url, atomically: true, encoding: .utf8)
        }
        return try String(contentsOf: url, encoding: .utf8)
    }

    /// The step events of the golden Keras trace of the twelve-point example at epochs 4, batch 4.
    static func goldenSteps() throws -> [JSONValue] {
        let url = Paths.goldenTrace
        let text = try String(contentsOf: url, encoding: .utf8)
        return try text.split(separator: "\n").map { try JSONParser.parse(String($0)) }.filter { $0["type"]?.stringValue == "step" }
    }
}
