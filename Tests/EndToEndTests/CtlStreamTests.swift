import Foundation
import LTClient
import LTProtocol
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite("ltctl tail streams", .serialized)
struct CtlStreamTests {
    @Test func tailJSONIsByteIdenticalToARawSubscription() throws {
        let h = try DaemonProcess.launchForLtctl()
        // Enough events to span many 64 KiB reads.
        let start = try h.ltctl(["start", "big", "--synthetic", "slope=3,intercept=-2,noise=0.5,n=8000,seed=1", "--batch-size", "8",
                                  "--epochs", "2", "--optimizer", "adam", "--learning-rate", "0.1"])
        #expect(start.status == 0, "\(start.stderr)")
        let tail = try h.ltctl(["tail", "big", "--json"])
        #expect(tail.status == 0)
        let raw = try h.rawSubscription("big")
        #expect(tail.stdoutBytes.count > 1_000_000)
        #expect(tail.stdoutBytes == raw)
        // --every and --since/--last select, but never alter, lines.
        let every = try h.ltctl(["tail", "big", "--json", "--every", "100"]).stdout.split(separator: "\n").map(String.init)
        let rawLines = Set(String(decoding: raw, as: UTF8.self).split(separator: "\n").map(String.init))
        #expect(every.allSatisfy { rawLines.contains($0) })
        let steps = every.compactMap { try? Event(line: Array($0.utf8)) }.filter { $0.type == .step }
        let totalSteps = String(decoding: raw, as: UTF8.self).split(separator: "\n")
            .compactMap { try? Event(line: Array($0.utf8)) }.filter { $0.type == .step }.count
        #expect(totalSteps == 2000)
        #expect(steps.count == totalSteps / 100)
        #expect(steps.allSatisfy { ($0.int("iteration") ?? 1) % 100 == 0 })
        let last = try h.ltctl(["tail", "big", "--json", "--last", "3"]).stdout.split(separator: "\n")
        #expect(last.count == 3)
        #expect(last.last.map { (try? Event(line: Array($0.utf8)))?.type } == .end)
    }

    @Test func noFollowStopsAtTheSeqCurrentWhenSubscribing() throws {
        let h = try DaemonProcess.launchForLtctl()
        try h.startColab("p", extra: ["--paused"])
        #expect(try h.ltctl(["step", "p", "2"]).status == 0)
        let status = try JSONParser.parse(try h.ltctl(["status", "p", "--json"]).stdout)
        let seq = try #require(status["seq"]?.intValue)
        let json = try h.ltctl(["tail", "p", "--json", "--no-follow"], timeout: .seconds(10))
        #expect(json.status == 0)
        let lines = json.stdout.split(separator: "\n")
        #expect(lines.count == seq)
        #expect(lines.last.flatMap { try? Event(line: Array($0.utf8)) }?.seq == seq)
        let every = try h.ltctl(["tail", "p", "--json", "--no-follow", "--every", "3"], timeout: .seconds(10))
        #expect(every.status == 0, "a filtered-out last step must not leave --no-follow waiting")
        let human = try h.ltctl(["tail", "p", "--no-follow"], timeout: .seconds(10))
        #expect(human.status == 0)
        #expect(human.stdout.contains("── paused"))
        #expect(try h.ltctl(["cancel", "p"]).status == 0)
    }

    /// Three `ltctl tail` processes in tmux panes watch one paced run; their screens must be identical.
    @Test func threeTailsInTmuxShowTheSameRun() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/tmux") else {
            Issue.record("tmux is not installed (apt-get install tmux)")
            return
        }
        let h = try DaemonProcess.launchForLtctl()
        try h.startColab("shared", extra: ["--pace", "100ms"])
        let session = "ltctl-\(getpid())"
        let tmuxSocket = h.directory + "/tmux.sock"
        // tmux's server inherits its first client's signal mask: Command starts it clean (see ChildProcess).
        func tmux(_ args: [String]) throws -> CommandResult {
            try Command.run(["/usr/bin/tmux", "-S", tmuxSocket] + args)
        }
        let command = "NO_COLOR=1 LTD_SOCKET=\(h.socketPath) \(Paths.ltctl) tail shared; echo exit=$?; sleep 30"
        // The pane's shell lingers after ltctl, so tmux has read every byte when we capture (output written just
        // before a pane's process exits can otherwise be lost). One tmux command line, so remain-on-exit is set before any pane can finish.
        let setUp = try tmux(["new-session", "-d", "-s", session, "-x", "450", "-y", "60", command,
                              ";", "set-option", "-t", session, "remain-on-exit", "on",
                              ";", "split-window", "-h", "-t", session, command,
                              ";", "split-window", "-h", "-t", session, command,
                              ";", "select-layout", "-t", session, "even-horizontal"])
        #expect(setUp.status == 0)
        defer { _ = try? tmux(["kill-server"]) }
        #expect(try h.waitFinished("shared") == 0)
        var captures: [String] = []
        let deadline = Date().addingTimeInterval(20)
        repeat {
            usleep(200_000)
            captures = try (0..<3).map { pane in
                try tmux(["capture-pane", "-p", "-J", "-S", "-", "-t", "\(session):0.\(pane)"]).stdout
                    .split(separator: "\n", omittingEmptySubsequences: false)
                    .map { $0.replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression) }
                    .filter { !$0.hasPrefix("Pane is dead") }
                    .joined(separator: "\n").trimmingCharacters(in: .newlines)
            }
        } while Date() < deadline && !captures.allSatisfy { $0.contains("exit=") }
        #expect(captures.count == 3)
        #expect(captures.allSatisfy { $0.contains("exit=0") }, "\(captures)")
        #expect(captures.allSatisfy { $0.contains("── end: finished after 12 steps") })
        #expect(captures[0] == captures[1])
        #expect(captures[1] == captures[2])
    }
}
