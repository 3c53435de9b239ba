import Foundation
import LTProtocol
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The class board and pruning with real users (as OwnerNamesTests: root creates them, setpriv acts as them):
/// everyone's runs ranked by validation RMSE, `prune` of one's own jobs and, for the admin group, everyone's.
@Suite("class board and prune", .serialized)
struct ClassBoardTests {
    typealias Users = OwnerNamesTests

    /// A shared daemon (with the test's admin group) and its three users, alice, bob and the teacher (an admin).
    private struct Classroom {
        let daemon: DaemonProcess
        let alice: Users.User, bob: Users.User, teacher: Users.User
        private let ltctl: String

        init(_ tag: String) throws {
            (alice, bob, teacher) = try Users.users()
            (daemon, ltctl) = try Users.sharedDaemon(tag)
        }

        /// ltctl run as `user` against the daemon.
        func run(_ user: Users.User, _ arguments: [String]) throws -> CommandResult {
            try Users.asUser(user, [ltctl] + arguments + ["--socket", daemon.socketPath])
        }
    }

    @Test("list --all --sort val_rmse and board --once rank everyone's runs; diverged at the bottom with the reason")
    func boardRanksTheClass() throws {
        guard Users.available() else { return }
        let room = try Classroom("board")
        let (daemon, alice, bob, teacher) = (room.daemon, room.alice, room.bob, room.teacher)
        defer { daemon.cleanUp() }
        let run = room.run
        let split = ["--validation", "split:0.25"]
        #expect(try run(alice, ["start", "good", "--example", "colab", "--optimizer", "sgd", "--learning-rate", "0.001"] + split).status == 0)
        #expect(try run(alice, ["start", "rms", "--example", "colab"] + split).status == 0)
        #expect(try run(bob, ["start", "boom", "--example", "colab", "--optimizer", "sgd", "--learning-rate", "1000"] + split).status == 0)
        #expect(try run(teacher, ["start", "slow", "--example", "colab", "--pace", "2s"] + split).status == 0)
        #expect(try run(alice, ["tail", "good", "--json"]).status == 0)
        #expect(try run(alice, ["tail", "rms", "--json"]).status == 0)
        #expect(try run(bob, ["tail", "boom", "--json"]).status == 4, "diverged")

        let listed = try run(bob, ["list", "--all", "--sort", "val_rmse", "--json"])
        #expect(listed.status == 0, "\(listed.stderr)")
        let jobs = try JSONParser.parse(listed.stdout).arrayValue ?? []
        #expect(jobs.compactMap { $0["full_name"]?.stringValue }
                == ["\(alice.name)/good", "\(alice.name)/rms", "\(teacher.name)/slow", "\(bob.name)/boom"], "\(listed.stdout)")
        let values = jobs.prefix(2).compactMap { $0["val_rmse"]?.doubleValue }
        #expect(values.count == 2 && values[0] < values[1], "ranked lowest first: \(values)")

        let text = try run(bob, ["list", "--all", "--sort", "val_rmse"])
        let lines = text.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first?.hasPrefix("#  JOB") == true, "\(text.stdout)")
        #expect(lines.count == 5)
        #expect(lines[1].hasPrefix("1  \(alice.name)/good") && lines[1].contains("finished"), "\(lines)")
        #expect(lines[2].hasPrefix("2  \(alice.name)/rms"), "\(lines)")
        #expect(lines[3].hasPrefix("   \(teacher.name)/slow") && lines[3].contains("running") && lines[3].hasSuffix("still running"), "\(lines)")
        #expect(lines[4].hasPrefix("   \(bob.name)/boom") && lines[4].contains("diverged") && lines[4].contains("overshoots"), "\(lines)")

        let once = try run(alice, ["board", "--once"])
        #expect(once.status == 0, "\(once.stderr)")
        let frame = once.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(frame.first?.hasPrefix("Class board: 4 runs; 2 finished, 1 still going, 1 diverged or failed; ranked by val_rmse") == true, "\(frame)")
        #expect(Array(frame.dropFirst(2).prefix(5)) == lines, "board --once shows the same table as list --sort")

        let json = try JSONParser.parse(try run(alice, ["board", "--json", "--sort", "rmse"]).stdout).arrayValue ?? []
        #expect(json.map { $0["rank"]?.intValue } == [1, 2, nil, nil], "\(json)")
        #expect(json.compactMap { $0["standing"]?.stringValue } == ["finished", "finished", "going", "failed"])

        // Only sorting: by owner, and the live board refuses without a terminal, pointing to --once.
        let byOwner = try run(bob, ["list", "--all", "--sort", "owner", "--json"])
        let owners = (try JSONParser.parse(byOwner.stdout).arrayValue ?? []).compactMap { $0["full_name"]?.stringValue }
        #expect(owners == ["\(alice.name)/good", "\(alice.name)/rms", "\(bob.name)/boom", "\(teacher.name)/slow"])
        let live = try run(bob, ["board"])
        #expect(live.status == 64 && live.stderr.contains("board --once"), "\(live.stderr)")
        #expect(try run(bob, ["list", "--sort", "speed"]).status == 64)
    }

    @Test("prune removes one's own jobs that are over; --all needs root or the admin group; every removal is audited")
    func pruneOwnAndAll() throws {
        guard Users.available() else { return }
        let room = try Classroom("prune")
        let (daemon, alice, bob, teacher) = (room.daemon, room.alice, room.bob, room.teacher)
        defer { daemon.cleanUp() }
        let run = room.run
        #expect(try run(alice, ["start", "done1", "--example", "colab"]).status == 0)
        #expect(try run(alice, ["start", "done2", "--example", "colab"]).status == 0)
        #expect(try run(alice, ["start", "held", "--example", "colab", "--paused"]).status == 0)
        #expect(try run(bob, ["start", "done1", "--example", "colab"]).status == 0)
        for (user, job) in [(alice, "done1"), (alice, "done2"), (bob, "done1")] {
            #expect(try run(user, ["tail", job, "--json"]).status == 0)
        }
        let status = try JSONParser.parse(try run(alice, ["status", "done1", "--json"]).stdout)
        let ended = try #require(status["ended"]?.stringValue, "a finished job says when it ended: \(status)")
        #expect(ended.count == 20 && ended.hasSuffix("Z") && ended >= (status["created"]?.stringValue ?? ""))
        #expect(try JSONParser.parse(try run(alice, ["status", "held", "--json"]).stdout)["ended"] == nil)

        // bob may not prune everyone's; he is told who may, and nothing is removed.
        let refused = try run(bob, ["prune", "--all"])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("permission_denied") || refused.stderr.contains(Users.adminGroup), "\(refused.stderr)")
        #expect(refused.stderr.contains(Users.adminGroup), "\(refused.stderr)")
        // A dry run lists, removes nothing; --older-than keeps what ended recently.
        let dry = try run(bob, ["prune", "--dry-run"])
        #expect(dry.stdout.contains("Would prune 1 job of yours") && dry.stdout.contains("\(bob.name)/done1"), "\(dry.stdout)")
        #expect(try run(bob, ["status", "done1"]).status == 0)
        let recent = try run(bob, ["prune", "--older-than", "1h"])
        #expect(recent.status == 0 && recent.stdout.contains("nothing to prune"), "\(recent.stdout)")
        #expect(try run(bob, ["prune", "--older-than", "soon"]).status == 64)
        // bob prunes his own: alice's job1 of the same name stays.
        let mine = try JSONParser.parse(try run(bob, ["prune", "--json"]).stdout)
        #expect(mine["jobs"]?.arrayValue?.compactMap { $0["full_name"]?.stringValue } == ["\(bob.name)/done1"], "\(mine)")
        #expect(try run(bob, ["status", "done1"]).status == 1)
        #expect(try run(alice, ["status", "done1"]).status == 0)
        #expect(!FileManager.default.fileExists(atPath: daemon.jobDirectory("done1", owner: bob.uid)))

        // The teacher prunes everyone's: alice's two finished jobs go, her paused one stays.
        let all = try run(teacher, ["prune", "--all"])
        #expect(all.status == 0, "\(all.stderr)")
        #expect(all.stdout.contains("Pruned 2 jobs that are over") && all.stdout.contains("\(alice.name)/done2"), "\(all.stdout)")
        let left = try JSONParser.parse(try run(alice, ["list", "--json"]).stdout).arrayValue ?? []
        #expect(left.compactMap { $0["job"]?.stringValue } == ["held"])

        let log = daemon.stderr
        for line in ["audit: \(bob.name) (uid \(bob.uid)) prune \(bob.name)/done1 (ended ",
                     "audit: \(teacher.name) (uid \(teacher.uid)) prune \(alice.name)/done1 (ended ",
                     "(owned by \(alice.name) (uid \(alice.uid)); as admin)",
                     "refused: \(bob.name) (uid \(bob.uid)) may not prune every user's jobs"] {
            #expect(log.contains(line), "the log lacks \"\(line)\":\n\(log)")
        }
    }
}

/// `ltd --keep-finished`: jobs that are over go once they ended longer ago, at start (old checkpoints without
/// `ended` by their file's time) and while ltd runs; running, paused and damaged jobs stay.
@Suite("retention", .serialized)
struct RetentionTests {
    @Test func jobsThatEndedLongAgoGoAtStartAndWhileRunning() throws {
        let h = try DaemonProcess.launchForLtctl(tag: "retention")
        defer { h.cleanUp() }
        try h.runColabToTheEnd("old")
        try h.runColabToTheEnd("legacy")
        try h.runColabToTheEnd("recent")
        try h.startColab("held", extra: ["--paused"])
        try h.runColabToTheEnd("broken")
        #expect(try h.stop() == 0)

        // Three days ago: "old" by its `ended`, "legacy" (a checkpoint from before ltd recorded it) by its mtime.
        let threeDaysAgo = Int(Date().timeIntervalSince1970) - 3 * 86_400
        func rewrite(_ job: String, _ change: (inout [String: Any]) -> Void) throws {
            let url = URL(fileURLWithPath: h.checkpointPath(job: job))
            var object = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
            var summary = try #require(object["summary"] as? [String: Any])
            change(&summary)
            object["summary"] = summary
            try JSONSerialization.data(withJSONObject: object).write(to: url)
        }
        let formatter = ISO8601DateFormatter()
        try rewrite("old") { $0["ended"] = formatter.string(from: Date(timeIntervalSince1970: TimeInterval(threeDaysAgo))) }
        try rewrite("legacy") { $0["ended"] = nil }
        var times = [timeval(tv_sec: threeDaysAgo, tv_usec: 0), timeval(tv_sec: threeDaysAgo, tv_usec: 0)]
        #expect(utimes(h.checkpointPath(job: "legacy"), &times) == 0)
        // A damaged job is never removed, however old.
        try Data("not json".utf8).write(to: URL(fileURLWithPath: h.checkpointPath(job: "broken")))
        #expect(utimes(h.checkpointPath(job: "broken"), &times) == 0)

        try h.start(arguments: ["--keep-finished", "2d", "--log-level", "info"])
        try waitUntil("retention after restore") { h.stderr.contains("audit: ltd expire") && h.stderr.components(separatedBy: "audit: ltd expire").count == 3 }
        let names = { () throws -> Set<String> in
            Set((try JSONParser.parse(try h.ltctl(["list", "--json"]).stdout).arrayValue ?? []).compactMap { $0["job"]?.stringValue })
        }
        #expect(try names() == ["recent", "held", "broken"])
        #expect(h.stderr.contains("audit: ltd expire root/old (owned by root (uid 0); ended"), "\(h.stderr)")
        #expect(h.stderr.contains("kept 2d; --keep-finished)"))
        // The legacy checkpoint has no `ended`: its file's time, three days ago, stood for it.
        #expect(!FileManager.default.fileExists(atPath: h.jobDirectory("legacy")))
        #expect(try h.stop() == 0)

        // While running: with a 2-second retention a job goes within a few seconds of its end; a paused one stays.
        try h.start(arguments: ["--keep-finished", "2s", "--log-level", "info"])
        try h.runColabToTheEnd("quick")
        try waitUntil("quick to be removed", timeout: .seconds(15)) { try h.ltctl(["status", "quick"]).status == 1 }
        #expect(try names() == ["held", "broken"])
        #expect(h.stderr.contains("audit: ltd expire root/recent"), "recent ended minutes ago: more than 2s")
        #expect(h.stderr.contains("audit: ltd expire root/quick"))
    }

    @Test func keepFinishedRefusesWhatIsNotADuration() throws {
        for value in ["0s", "1.5d", "-1d", "forever"] {
            let result = try Command.run([Paths.ltd, "--keep-finished=" + value, "--socket", "/tmp/ltd-never.sock"])
            #expect(result.status == 64, "\(value)")
            #expect(result.stderr.contains("--keep-finished must be"), "\(result.stderr)")
        }
        let help = try Command.run([Paths.ltd, "--help"])
        #expect(help.stdout.contains("--keep-finished") && help.stdout.contains("Retention:"))
    }
}

/// `ltctl board` in a tmux window: the live ranking follows a run to its end, fits a resize, and q quits.
@Suite("ltctl board", .serialized)
struct CtlBoardTests {
    @Test func theLiveBoardFollowsARunToItsEndAndQuitsOnQ() throws {
        guard tmuxIsInstalled() else { return }
        let h = try DaemonProcess.launchForLtctl(tag: "board")
        defer { h.cleanUp() }
        try h.runColabToTheEnd("first")
        try h.startColab("slow", extra: ["--pace", "500ms", "--optimizer", "sgd", "--learning-rate", "0.001"])
        let tmux = CtlWatchTests.Tmux(directory: h.directory)
        try tmux(["new-session", "-d", "-s", "s", "-x", "110", "-y", "20",
                  "NO_COLOR=1 LTD_SOCKET=\(h.socketPath) \(Paths.ltctl) board; echo exit=$?; sleep 60",
                  ";", "set-option", "-t", "s", "remain-on-exit", "on"])
        var screen = try tmux.waitFor("s") { $0.first?.hasPrefix("Class board: 2 runs; 1 finished, 1 still going") == true }
        #expect(screen.first?.hasPrefix("Class board: 2 runs; 1 finished, 1 still going") == true, "\(screen)")
        #expect(screen.contains { $0.hasPrefix("1  root/first") && $0.contains("finished") }, "\(screen)")
        #expect(screen.contains { $0.hasPrefix("   root/slow") && $0.hasSuffix("still running") }, "\(screen)")
        #expect(screen.count == 20 && screen.last == "q quit", "\(screen)")

        // The slow run ends and takes first place: sgd with a small step ends at a lower val_rmse than rmsprop.
        screen = try tmux.waitFor("s", seconds: 30) { $0.first?.hasPrefix("Class board: 2 runs; 2 finished") == true }
        #expect(screen.contains { $0.hasPrefix("1  root/slow") && $0.contains("12/12") }, "\(screen)")
        #expect(screen.contains { $0.hasPrefix("2  root/first") }, "\(screen)")
        try tmux(["resize-window", "-t", "s", "-x", "50", "-y", "12"])
        screen = try tmux.waitFor("s") { $0.count == 12 && $0.first?.hasSuffix("…") == true }
        #expect(screen.count == 12 && screen.allSatisfy { $0.count <= 50 }, "\(screen)")

        // ltd restarts: the board says so, keeps the last list, and carries on when it is back.
        try tmux(["resize-window", "-t", "s", "-x", "160", "-y", "12"])
        #expect(try h.stop() == 0)
        screen = try tmux.waitFor("s") { $0.contains { $0.hasPrefix("ltd is unreachable") } }
        #expect(screen.contains { $0.hasPrefix("ltd is unreachable") && $0.contains("retrying") }, "\(screen)")
        #expect(screen.contains { $0.hasPrefix("1  root/slow") }, "the last list stays: \(screen)")
        try h.start(arguments: ["--log-level", "warning"])
        screen = try tmux.waitFor("s") { !$0.contains { $0.hasPrefix("ltd is unreachable") } }
        #expect(!screen.contains { $0.hasPrefix("ltd is unreachable") }, "\(screen)")
        #expect(screen.contains { $0.hasPrefix("2  root/first") }, "\(screen)")

        try tmux(["send-keys", "-t", "s", "q"])
        let after = try tmux.waitFor("s") { $0.contains("exit=0") }
        #expect(after.first == "exit=0", "the board leaves the alternate screen: \(after)")
    }
}
