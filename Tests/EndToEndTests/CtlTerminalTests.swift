import Foundation
import LTProtocol
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// What a person sees in a real terminal (tmux), and the first steps a newcomer takes: tailing before starting,
/// and a CSV from a spreadsheet.
@Suite("ltctl in a terminal", .serialized)
struct CtlTerminalTests {
    /// `ltctl tail` in a tmux pane of `columns` columns, after the job has finished: the screen's logical lines
    /// (`capture-pane -J` joins any line the terminal wrapped).
    private func tailScreen(_ h: DaemonProcess, job: String, columns: Int, extra: String = "") throws -> [String] {
        let tmuxSocket = h.directory + "/tmux-\(columns)-\(UUID().uuidString.prefix(8)).sock"
        func tmux(_ args: [String]) throws -> CommandResult { try Command.run(["/usr/bin/tmux", "-S", tmuxSocket] + args) }
        let command = "NO_COLOR=1 LTD_SOCKET=\(h.socketPath) \(Paths.ltctl) tail \(job) \(extra); echo exit=$?; sleep 30"
        let session = "w\(columns)"
        #expect(try tmux(["new-session", "-d", "-s", session, "-x", String(columns), "-y", "80", command,
                          ";", "set-option", "-t", session, "remain-on-exit", "on"]).status == 0)
        defer { _ = try? tmux(["kill-server"]) }
        var lines: [String] = []
        let deadline = Date().addingTimeInterval(20)
        repeat {
            usleep(200_000)
            lines = try tmux(["capture-pane", "-p", "-J", "-S", "-", "-t", session]).stdout
                .split(separator: "\n").map { $0.replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression) }
        } while Date() < deadline && !lines.contains { $0.hasPrefix("exit=") }
        return lines
    }

    private func requireTmux() -> Bool {
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/tmux") { return true }
        Issue.record("tmux is not installed (apt-get install tmux)")
        return false
    }

    @Test func tailFitsAnEightyColumnTerminal() throws {
        guard requireTmux() else { return }
        let h = try DaemonProcess.launchForLtctl()
        try h.runColabToTheEnd("job1")
        let lines = try tailScreen(h, job: "job1", columns: 80)
        #expect(lines.contains("exit=0"), "\(lines)")
        // No logical line is wider than the terminal, so none wrapped.
        #expect(lines.allSatisfy { $0.count <= 80 }, "\(lines.filter { $0.count > 80 })")
        let header = try #require(lines.first { $0.hasPrefix("epoch") })
        for column in ["iter", "w after", "b after", "keras rmse", "val rmse"] { #expect(header.contains(column)) }
        let steps = lines.filter { $0.range(of: #"^\s+\d/4 "#, options: .regularExpression) != nil }
        #expect(steps.count == 12)
        // The numbers are the run's own: iteration 3's row and its epoch summary, split over two clean lines.
        #expect(steps[2].contains("0.958791") && steps[2].contains("18.0378") && steps[2].contains("16.3179"))
        let epoch = try #require(lines.firstIndex { $0.hasPrefix("── epoch 1/4 done after iteration 3:") })
        #expect(lines[epoch].contains("loss 325.3611  rmse 18.0378"))
        #expect(lines[epoch + 1].hasPrefix("   ") && lines[epoch + 1].contains("val_rmse 16.3179"))
    }

    @Test func tailAtOneHundredTwentyColumnsKeepsEveryColumn() throws {
        guard requireTmux() else { return }
        let h = try DaemonProcess.launchForLtctl()
        try h.runColabToTheEnd("job1")
        let lines = try tailScreen(h, job: "job1", columns: 120)
        #expect(lines.contains("exit=0"), "\(lines)")
        #expect(lines.allSatisfy { $0.count <= 120 }, "\(lines.filter { $0.count > 120 })")
        let header = try #require(lines.first { $0.hasPrefix("epoch") })
        for column in ["step", "rows", "batch loss", "keras rmse", "val rmse"] { #expect(header.contains(column)) }
        // The epoch summary (125 characters) breaks once, between whole pairs.
        let epoch = try #require(lines.firstIndex { $0.hasPrefix("── epoch 1/4 done after iteration 3:") })
        #expect(lines[epoch].hasSuffix("val_rmse 16.3179"))
        #expect(lines[epoch + 1] == "   w 0.958791  b 0.429815")
        // A narrow terminal drops columns, --wide brings them back (wider than the pane, so tmux wraps them).
        let narrow = try tailScreen(h, job: "job1", columns: 60)
        let narrowHeader = try #require(narrow.first { $0.hasPrefix("epoch") })
        #expect(!narrowHeader.contains("batch loss") && narrowHeader.contains("val rmse"))
        #expect(narrow.allSatisfy { $0.count <= 60 }, "\(narrow.filter { $0.count > 60 })")
        let wide = try tailScreen(h, job: "job1", columns: 60, extra: "--wide")
        #expect(wide.first { $0.hasPrefix("epoch") }?.contains("batch loss") == true)
    }

    @Test func tailWaitsForAJobThatIsNotStartedYet() throws {
        let h = try DaemonProcess.launchForLtctl()
        let out = h.directory + "/wait.out", err = h.directory + "/wait.err"
        var environment = ProcessInfo.processInfo.environment
        environment["LTD_SOCKET"] = h.socketPath
        let tail = try ChildProcess([Paths.ltctl, "tail", "later", "--wait", "--json"], environment: environment,
                                    stdout: .file(out, append: false), stderr: .file(err, append: false))
        defer { tail.killAndReap() }
        usleep(600_000)
        #expect(tail.exitStatus == nil, "tail --wait must keep waiting for a job that does not exist yet")
        #expect(String(decoding: FileManager.default.contents(atPath: err) ?? Data(), as: UTF8.self)
            .contains("waiting for job later to be started"))
        try h.startColab("later")
        #expect(try tail.waitForExit(timeout: .seconds(30)) == 0)
        let streamed = FileManager.default.contents(atPath: out) ?? Data()
        #expect(streamed == (try h.rawSubscription("later")))
        // Without --wait it still fails at once, naming the job.
        let missing = try h.ltctl(["tail", "nothere"])
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("nothere"))
    }

    @Test func csvFromAEuropeanSpreadsheet() throws {
        let h = try DaemonProcess.launchForLtctl()
        // Semicolons between fields and decimal commas, as a spreadsheet in a German or French locale saves it.
        let european = "x;y\n1;5,0\n2;8,8\n3;9,6\n4;14,2\n"
        let path = h.directory + "/eu.csv"
        try european.write(toFile: path, atomically: true, encoding: .utf8)
        let start = try h.ltctl(["start", "eu", "--csv", path, "--epochs", "1", "--batch-size", "4", "--init-kernel", "0.5"])
        #expect(start.status == 0, "\(start.stderr)")
        #expect(try h.waitFinished("eu") == 0)
        let startEvent = try #require(String(decoding: try h.rawSubscription("eu"), as: UTF8.self).split(separator: "\n").first)
        let spec = try JSONParser.parse(Array(startEvent.utf8))["spec"]
        #expect(spec?["data"]?["y"]?.arrayValue?.compactMap(\.doubleValue) == [5.0, 8.8, 9.6, 14.2])

        // Forcing a comma delimiter on it says how the file was read and what to do.
        let forced = try h.ltctl(["start", "eu2", "--csv", path, "--delimiter", ","])
        #expect(forced.status == 1)
        #expect(forced.stderr.contains("need two columns (x and y), found 1 with fields separated by comma"), "\(forced.stderr)")
        #expect(forced.stderr.contains("--delimiter"))

        // A bad field is named alone, with its column.
        let bad = h.directory + "/bad.csv"
        try "area,price\n1,5.0\n2,abc\n".write(toFile: bad, atomically: true, encoding: .utf8)
        let refused = try h.ltctl(["start", "bad", "--csv", bad])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains(#"bad.csv:3: column 2 ("price"): "abc" is not a finite number"#), "\(refused.stderr)")
        #expect(!refused.stderr.contains("\"2\""))

        // Quoted fields may hold the delimiter; "" is a quote.
        let quoted = h.directory + "/quoted.csv"
        try "\"x, the input\",\"y \"\"label\"\"\"\n1,5\n2,8.8\n".write(toFile: quoted, atomically: true, encoding: .utf8)
        let fromQuoted = try h.ltctl(["start", "q", "--csv", quoted, "--x", "x, the input", "--y", "y \"label\"", "--epochs", "1"])
        #expect(fromQuoted.status == 0, "\(fromQuoted.stderr)")
    }
}
