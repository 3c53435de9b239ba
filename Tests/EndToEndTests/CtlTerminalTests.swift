import Foundation
import LTProtocol
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Whether tmux is there to play the person at the terminal; records an issue when it is not (the tests need it).
func tmuxIsInstalled() -> Bool {
    if FileManager.default.isExecutableFile(atPath: "/usr/bin/tmux") { return true }
    Issue.record("tmux is not installed (apt-get install tmux)")
    return false
}

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


    @Test func tailFitsAnEightyColumnTerminal() throws {
        guard tmuxIsInstalled() else { return }
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
        guard tmuxIsInstalled() else { return }
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

/// `ltctl watch` in tmux windows: keys, a resize, the end of the job, and two watches and a tail that agree.
@Suite("ltctl watch", .serialized)
struct CtlWatchTests {
    final class Tmux {
        let socket: String
        init(directory: String) { socket = directory + "/watch-\(UUID().uuidString.prefix(8)).sock" }
        @discardableResult
        func callAsFunction(_ args: [String]) throws -> CommandResult { try Command.run(["/usr/bin/tmux", "-S", socket] + args) }
        func screen(_ target: String) throws -> [String] {
            var lines = try self(["capture-pane", "-p", "-t", target]).stdout.split(separator: "\n", omittingEmptySubsequences: false)
                .map { $0.replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression) }
            if lines.last == "" { lines.removeLast() }   // capture-pane ends its last line with a newline
            return lines
        }
        /// Waits until the window's screen satisfies `condition`; returns the last screen either way.
        func waitFor(_ target: String, seconds: Double = 15, _ condition: ([String]) -> Bool) throws -> [String] {
            let deadline = Date().addingTimeInterval(seconds)
            var lines = try screen(target)
            while !condition(lines) && Date() < deadline {
                usleep(100_000)
                lines = try screen(target)
            }
            return lines
        }
        deinit { _ = try? Command.run(["/usr/bin/tmux", "-S", socket, "kill-server"]) }
    }

    @Test func twoWatchesAndATailAgreeAndTheKeysDriveTheJob() throws {
        guard tmuxIsInstalled() else { return }
        let h = try DaemonProcess.launchForLtctl()
        try h.startColab("w1", extra: ["--paused", "--pace", "250ms"])
        let tmux = Tmux(directory: h.directory)
        let env = "NO_COLOR=1 LTD_SOCKET=\(h.socketPath)"
        let watch = "\(env) \(Paths.ltctl) watch w1; echo exit=$?; sleep 60"
        let tail = "\(env) \(Paths.ltctl) tail w1; echo exit=$?; sleep 60"
        try tmux(["new-session", "-d", "-s", "s", "-n", "a", "-x", "100", "-y", "45", watch,
                  ";", "set-option", "-t", "s", "remain-on-exit", "on",
                  ";", "new-window", "-d", "-t", "s", "-n", "b", watch,
                  ";", "new-window", "-d", "-t", "s", "-n", "t", tail])
        var a = try tmux.waitFor("s:a") { $0.first?.contains("w1  paused") == true }
        #expect(a.first?.contains("iteration 0/12") == true, "\(a)")
        #expect(a.last == "p pause  r resume  s step  q quit")

        // s: one step, seen by both watches.
        try tmux(["send-keys", "-t", "s:a", "s"])
        a = try tmux.waitFor("s:a") { $0.first?.contains("iteration 1/12") == true }
        #expect(a.first?.contains("iteration 1/12") == true, "\(a)")
        #expect(a.contains { $0.contains("one step requested") })
        let b1 = try tmux.waitFor("s:b") { $0.first?.contains("iteration 1/12") == true }
        #expect(b1.contains { $0.hasPrefix("  1/4   1/3     1  0-3") && $0.contains("0.658114") && $0.contains("18.7706") }, "\(b1)")

        // A resize redraws within the new size.
        try tmux(["resize-window", "-t", "s:a", "-x", "72", "-y", "30"])
        a = try tmux.waitFor("s:a") { $0.count == 30 && $0.first?.contains("…") == true }
        #expect(a.count == 30)
        #expect(a.allSatisfy { $0.count <= 72 }, "\(a.filter { $0.count > 72 })")
        #expect(a.contains { $0.contains("0.658114") })

        // r, then p: the job runs, and pauses again at the key.
        try tmux(["send-keys", "-t", "s:a", "r"])
        _ = try tmux.waitFor("s:b") { $0.first?.contains("iteration 3/12") == true }
        try tmux(["send-keys", "-t", "s:a", "p"])
        let paused = try tmux.waitFor("s:b") { $0.first?.contains("w1  paused") == true }
        #expect(paused.first?.contains("w1  paused") == true, "\(paused)")
        #expect(try JSONParser.parse(try h.ltctl(["status", "w1", "--json"]).stdout)["state"]?.stringValue == "paused")
        // r again: the job runs to its end; the final view stays.
        try tmux(["send-keys", "-t", "s:a", "r"])
        let finalA = try tmux.waitFor("s:a", seconds: 30) { $0.first?.contains("w1  finished") == true }
        let finalB = try tmux.waitFor("s:b", seconds: 30) { $0.first?.contains("w1  finished") == true }
        #expect(finalB.first?.contains("iteration 12/12") == true, "\(finalB)")
        #expect(finalB.contains { $0.contains("w 1.399683  b 0.941961") })
        #expect(finalB.contains { $0.contains("the job has ended; q quits") })
        #expect(finalA.contains { $0.contains("1.399683") })
        // The tail in the third window printed the same rows as the watches' tables.
        let t = try tmux.waitFor("s:t", seconds: 30) { $0.contains("exit=0") }
        let tailRows = t.filter { $0.range(of: #"^\s+\d/4 "#, options: .regularExpression) != nil }
        let watchRows = finalB.filter { $0.range(of: #"^\s+\d/4 "#, options: .regularExpression) != nil }
        #expect(tailRows.count == 12 && watchRows.count == 12)
        func numbers(_ row: String) -> [String] { row.split(separator: " ").filter { $0.contains(".") }.map(String.init) }
        #expect(tailRows.map(numbers) == watchRows.map(numbers))

        // q restores the terminal and says why watching ended.
        try tmux(["send-keys", "-t", "s:b", "q"])
        let after = try tmux.waitFor("s:b") { $0.contains("exit=0") }
        #expect(after.first == "ltctl watch: w1 ended finished after 12 steps: w 1.3996835, b 0.9419614", "\(after)")
        #expect(after.contains("exit=0"))
    }

    @Test func watchCarriesOnWhenLtdIsKilledAndRestarted() throws {
        guard tmuxIsInstalled() else { return }
        let h = try DaemonProcess.launchForLtctl()
        try h.startColab("r1", extra: ["--pace", "150ms"])
        let tmux = Tmux(directory: h.directory)
        try tmux(["new-session", "-d", "-s", "s", "-x", "100", "-y", "45",
                  "NO_COLOR=1 LTD_SOCKET=\(h.socketPath) \(Paths.ltctl) watch r1; echo exit=$?; sleep 60",
                  ";", "set-option", "-t", "s", "remain-on-exit", "on"])
        _ = try tmux.waitFor("s") { $0.first?.contains("iteration 3/12") == true }
        try h.killHard()
        let lost = try tmux.waitFor("s") { $0.contains { $0.contains("ltd is unreachable") } }
        #expect(lost.contains { $0.contains("reconnecting and resuming after event") }, "\(lost)")
        try h.start(arguments: ["--log-level", "warning"])
        let final = try tmux.waitFor("s", seconds: 30) { $0.first?.contains("r1  finished") == true }
        #expect(final.first?.contains("iteration 12/12") == true, "\(final)")
        // Every iteration once, in order: no gap and no repeat across the restart.
        let iterations = final.compactMap { line -> Int? in
            guard line.range(of: #"^\s+\d/4 "#, options: .regularExpression) != nil else { return nil }
            return Int(line.split(separator: " ")[2])
        }
        #expect(iterations == Array(1...12), "\(final)")
        #expect(final.contains { $0.contains("w 1.399683  b 0.941961") })
        try tmux(["send-keys", "-t", "s", "q"])
        #expect(try tmux.waitFor("s") { $0.contains("exit=0") }.contains("exit=0"))
    }

    /// --plain: lines of text a screen reader can follow; nothing is drawn, so they stay on the normal screen.
    @Test func plainWatchSaysWhatHappensInLines() throws {
        guard tmuxIsInstalled() else { return }
        let h = try DaemonProcess.launchForLtctl()
        try h.startColab("p1", extra: ["--pace", "50ms"])
        let tmux = Tmux(directory: h.directory)
        try tmux(["new-session", "-d", "-s", "s", "-x", "160", "-y", "40",
                  "NO_COLOR=1 LTD_SOCKET=\(h.socketPath) \(Paths.ltctl) watch p1 --plain; echo exit=$?; sleep 60",
                  ";", "set-option", "-t", "s", "remain-on-exit", "on"])
        _ = try tmux.waitFor("s") { $0.contains { $0.hasPrefix("p1 ended finished") } }
        try tmux(["send-keys", "-t", "s", "q"])
        let lines = try tmux.waitFor("s") { $0.contains("exit=0") }
        #expect(lines.first?.hasPrefix("p1: rmsprop (learning_rate 0.05") == true, "\(lines)")
        #expect(lines.contains("epoch 1 of 4 done: keras rmse 18.0378, validation rmse 16.3179, w 0.958791, b 0.429815"))
        #expect(lines.contains("p1 ended finished after 12 steps: w 1.3996835, b 0.9419614"))
        #expect(lines.contains("exit=0"))
    }

    @Test func watchRefusesWithoutATerminalAndPointsToTail() throws {
        let h = try DaemonProcess.launchForLtctl()
        try h.startColab("w2")
        let result = try h.ltctl(["watch", "w2"])
        #expect(result.status == 64)
        #expect(result.stderr.contains("use `ltctl tail w2`"), "\(result.stderr)")
    }

    @Test func ctrlCRestoresTheTerminal() throws {
        guard tmuxIsInstalled() else { return }
        let h = try DaemonProcess.launchForLtctl()
        try h.startColab("w3", extra: ["--paused"])
        let tmux = Tmux(directory: h.directory)
        try tmux(["new-session", "-d", "-s", "s", "-x", "90", "-y", "30",
                  "NO_COLOR=1 LTD_SOCKET=\(h.socketPath) \(Paths.ltctl) watch w3; echo exit=$?; sleep 60",
                  ";", "set-option", "-t", "s", "remain-on-exit", "on"])
        _ = try tmux.waitFor("s") { $0.first?.contains("w3  paused") == true }
        try tmux(["send-keys", "-t", "s", "C-c"])
        let after = try tmux.waitFor("s") { $0.contains { $0.hasPrefix("exit=") } }
        #expect(after.contains("exit=130"), "\(after)")
        #expect(after.first == "ltctl watch: interrupted; w3 is paused, iteration 0 of 12", "\(after)")
    }

    @Test func aWatcherWhoIsNotTheOwnerIsToldWhyNot() throws {
        guard getuid() == 0, FileManager.default.isExecutableFile(atPath: "/usr/bin/tmux") else { return }  // acts as nobody
        let directory = try Paths.temporaryDirectory("watchperm")
        chmod(directory, 0o777)
        let h = try DaemonProcess.launch(directory: directory)
        defer { h.cleanUp() }
        chmod(h.socketPath, 0o666)
        try h.startColab("mine", extra: ["--paused"])
        let tmux = Tmux(directory: "/tmp")
        try tmux(["new-session", "-d", "-s", "s", "-x", "100", "-y", "30",
                  "NO_COLOR=1 LTD_SOCKET=\(h.socketPath) /usr/bin/setpriv --reuid=65534 --regid=65534 --clear-groups \(Paths.ltctl) watch root/mine; echo exit=$?; sleep 60",
                  ";", "set-option", "-t", "s", "remain-on-exit", "on"])
        _ = try tmux.waitFor("s") { $0.first?.contains("mine  paused") == true }
        try tmux(["send-keys", "-t", "s", "s"])
        let screen = try tmux.waitFor("s") { $0.contains { $0.contains("only its owner, root") } }
        #expect(screen.contains { $0.contains("root/mine belongs to root (uid 0); only its owner, root or a member of the group ltd-admin") }, "\(screen)")
        #expect(screen.first?.contains("iteration 0/12") == true)
        let status = try JSONParser.parse(try h.ltctl(["status", "mine", "--json"]).stdout)
        #expect(status["iteration"]?.intValue == 0)
        try tmux(["send-keys", "-t", "s", "q"])
        #expect(try tmux.waitFor("s") { $0.contains("exit=0") }.contains("exit=0"))
    }
}
