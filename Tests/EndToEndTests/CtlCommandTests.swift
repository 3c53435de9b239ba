import Foundation
import LTClient
import LTProtocol
import Testing

/// Every ltctl command against a real ltd.
@Suite("ltctl commands against a real ltd", .serialized)
struct CtlCommandTests {
    @Test func startListStatusJSON() throws {
        let h = try DaemonProcess.launchForLtctl()
        try h.runColabToTheEnd("job1")
        let status = try JSONParser.parse(try h.ltctl(["status", "job1", "--json"]).stdout)
        #expect(status["state"]?.stringValue == "finished")
        #expect(status["iteration"]?.intValue == 12)
        #expect(status["epoch"]?.intValue == 4)
        #expect(status["owner"]?.intValue == Int(getuid()))
        let list = try JSONParser.parse(try h.ltctl(["list", "--json"]).stdout)
        #expect(list.arrayValue?.compactMap { $0["job"]?.stringValue } == ["job1"])
        let human = try h.ltctl(["list"])
        #expect(human.status == 0)
        #expect(human.stdout.contains("job1  finished"))
    }

    /// `ltctl hello` names the daemon behind the socket (the pid the test started) and the caller as the daemon sees
    /// it. Here both run as the same user; the system test (scripts/test-systemd)
    /// checks a caller and a daemon that differ.
    @Test func helloNamesTheDaemonAndTheCaller() throws {
        let h = try DaemonProcess.launchForLtctl()
        let me = getpwuid(getuid()).flatMap { $0.pointee.pw_name.map { String(cString: $0) } }
        let described = me.map { "\($0) (uid \(getuid()))" } ?? "uid \(getuid())"
        let human = try h.ltctl(["hello"])
        #expect(human.status == 0, "\(human.stderr)")
        #expect(human.stdout == "ltd \(DefaultPaths.daemonVersion) (protocol \(DefaultPaths.protocolVersion)), pid \(h.pid), at \(h.socketPath)\n"
                + "you are \(described); the daemon runs as \(described)\n")
        let json = try h.ltctl(["hello", "--json"])
        let reply = try JSONParser.parse(json.stdout)
        #expect(reply["type"]?.stringValue == "hello")
        #expect(ProcessIdentity(json: reply) == ProcessIdentity(pid: h.pid, uid: getuid(), gid: getgid(), user: me))
        let peer = try #require(ProcessIdentity(json: reply["peer"]))
        #expect(peer.uid == getuid() && peer.gid == getgid() && peer.user == me)
        #expect(peer.pid > 0 && peer.pid != h.pid, "the caller's pid is the ltctl process's, not the daemon's")
    }

    @Test func stepThrough() throws {
        let h = try DaemonProcess.launchForLtctl()
        try h.startColab("walk", extra: ["--paused"])
        let step = try h.ltctl(["step", "walk", "3"])
        #expect(step.status == 0, "\(step.stderr)")
        #expect(step.stdout == "walk: paused at iteration 3\n")
        let status = try JSONParser.parse(try h.ltctl(["status", "walk", "--json"]).stdout)
        #expect(status["iteration"]?.intValue == 3)
        #expect(status["state"]?.stringValue == "paused")
        #expect(try h.ltctl(["resume", "walk"]).status == 0)
        #expect(try h.waitFinished("walk") == 0)
        let done = try JSONParser.parse(try h.ltctl(["status", "walk", "--json"]).stdout)
        #expect(done["state"]?.stringValue == "finished")
        #expect(done["iteration"]?.intValue == 12)
    }

    @Test func cancelPauseDeleteAndExitCodes() throws {
        let h = try DaemonProcess.launchForLtctl()
        try h.startColab("slow", extra: ["--paused"])
        #expect(try h.ltctl(["cancel", "slow"]).status == 0)
        // tail of a cancelled job exits 3, in both formats.
        #expect(try h.ltctl(["tail", "slow"]).status == 3)
        #expect(try h.ltctl(["tail", "slow", "--json"]).status == 3)
        let pause = try h.ltctl(["pause", "slow"])
        #expect(pause.status == 1)
        #expect(pause.stderr.contains("slow"))
        #expect(try h.ltctl(["delete", "slow"]).status == 0)
        let gone = try h.ltctl(["status", "slow"])
        #expect(gone.status == 1)
        #expect(gone.stderr.contains("no job named \"slow\""))
    }

    @Test func errorsSayWhatToDo() throws {
        let h = try DaemonProcess.launchForLtctl()
        try h.startColab("known")
        let unknown = try h.ltctl(["status", "nosuch"])
        #expect(unknown.status == 1)
        #expect(unknown.stderr.contains("known"), "the daemon's message lists the known jobs: \(unknown.stderr)")
        let missing = h.directory + "/nothing.sock"
        let down = try h.ltctl(["list", "--socket", missing])
        #expect(down.status == 69)
        #expect(down.stderr.contains(missing))
        #expect(down.stderr.contains("systemctl start ltd"))
        #expect(down.stderr.contains("ltd &"))
        let usage = try h.ltctl(["start", "x"])
        #expect(usage.status == 64)
        let badName = try h.ltctl(["tail", "../etc"])
        #expect(badName.status == 64)
        let exists = try h.ltctl(["start", "known", "--example", "colab"])
        #expect(exists.status == 1)
        #expect(exists.stderr.contains("known"))
    }

    /// Another user may watch but not control; the refusal names the owner. Needs root (to run ltctl as nobody).
    @Test(.enabled(if: getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/sbin/runuser")))
    func permissionErrorsNameTheOwner() throws {
        let h = try DaemonProcess.launchForLtctl()
        try h.startColab("mine", extra: ["--paused"])
        // Let nobody reach the socket and a copy of ltctl.
        chmod(h.directory, 0o755)
        chmod(h.socketPath, 0o666)
        let copy = h.directory + "/ltctl"
        try FileManager.default.copyItem(atPath: Paths.ltctl, toPath: copy)
        func run(_ args: [String]) throws -> CommandResult {
            try Command.run(["/usr/sbin/runuser", "-u", "nobody", "--", copy] + args + ["--socket", h.socketPath],
                            environment: ["NO_COLOR": "1", "PATH": "/usr/bin:/bin"])
        }
        let cancel = try run(["cancel", "root/mine"])
        #expect(cancel.status == 1)
        #expect(cancel.stderr.contains("uid 0"), "\(cancel.stderr)")
        #expect(cancel.stderr.contains("root"))
        let watch = try run(["status", "root/mine", "--json"])
        #expect(watch.status == 0, "anyone who can open the socket may watch: \(watch.stderr)")
        #expect(try h.ltctl(["cancel", "mine"]).status == 0)
    }

    @Test func startFromCSVSyntheticAndSpec() throws {
        let h = try DaemonProcess.launchForLtctl()
        let csv = "area,price\n1,5.0\n2,8.8\n3,9.6\n4,14.2\n"
        let path = h.directory + "/data.csv"
        try csv.write(toFile: path, atomically: true, encoding: .utf8)
        let fromCSV = try h.ltctl(["start", "csv", "--csv", path, "--x", "area", "--y", "price", "--epochs", "2", "--batch-size", "2",
                                    "--optimizer", "sgd", "--learning-rate", "0.01", "--init-kernel", "0.5", "--json"])
        #expect(fromCSV.status == 0, "\(fromCSV.stderr)")
        #expect(try h.waitFinished("csv") == 0)
        let events = String(decoding: try h.rawSubscription("csv"), as: UTF8.self).split(separator: "\n")
        let start = try JSONParser.parse(String(events[0]))
        #expect(start["spec"]?["data"]?["x"] == .array([.number("1.0"), .number("2.0"), .number("3.0"), .number("4.0")]))
        #expect(start["optimizer"]?["name"]?.stringValue == "sgd")

        let synthetic = try h.ltctl(["start", "syn", "--synthetic", "slope=3,intercept=-2,noise=0.5,n=200,seed=1",
                                      "--validation", "split:0.25", "--batch-size", "16", "--shuffle=7"])
        #expect(synthetic.status == 0, "\(synthetic.stderr)")
        #expect(try h.waitFinished("syn") == 0)
        let synStart = try JSONParser.parse(String(String(decoding: try h.rawSubscription("syn"), as: UTF8.self).split(separator: "\n")[0]))
        #expect(synStart["n_train"]?.intValue == 150)
        #expect(synStart["n_val"]?.intValue == 50)

        let spec = #"{"data":{"x":[1,2,3],"y":[2,4,6]},"optimizer":{"name":"adam","learning_rate":0.1},"epochs":3,"batch_size":3}"#
        let fromSpec = try h.ltctl(["start", "spec", "--spec", "-", "--epochs", "5"], stdin: Data(spec.utf8))
        #expect(fromSpec.status == 0, "\(fromSpec.stderr)")
        #expect(try h.waitFinished("spec") == 0)
        let specStatus = try JSONParser.parse(try h.ltctl(["status", "spec", "--json"]).stdout)
        #expect(specStatus["iteration"]?.intValue == 5, "--epochs overrides the spec file's 3")

        let invalid = try h.ltctl(["start", "bad", "--example", "colab", "--rho", "1.5"])
        #expect(invalid.status == 1)
        #expect(invalid.stderr.contains("rho"))
    }

    @Test func startFollowExitsWithTheJob() throws {
        let h = try DaemonProcess.launchForLtctl()
        let follow = try h.ltctl(["start", "f", "--example", "colab", "--follow"])
        #expect(follow.status == 0)
        #expect(follow.stdout.contains("── end: finished after 12 steps"))
    }

    @Test func exportHasOneRowPerStepWithTheDaemonsNumbers() throws {
        let h = try DaemonProcess.launchForLtctl()
        try h.runColabToTheEnd("e")
        let csv = try h.ltctl(["export", "e", "--csv"])
        #expect(csv.status == 0)
        let lines = csv.stdout.split(separator: "\n").map(String.init)
        #expect(lines.count == 13)
        let header = lines[0].split(separator: ",").map(String.init)
        let steps = String(decoding: try h.rawSubscription("e"), as: UTF8.self).split(separator: "\n")
            .compactMap { try? Event(line: Array($0.utf8)) }.filter { $0.type == .step }
        #expect(steps.count == 12)
        for (line, step) in zip(lines.dropFirst(), steps) {
            let fields = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            #expect(fields.count == header.count)
            for key in ["w_after", "b_after", "grad_w", "batch_loss", "rmse", "val_rmse"] {
                guard let column = header.firstIndex(of: key), case .number(let text)? = step.value(key) else {
                    Issue.record("missing \(key)"); continue
                }
                #expect(fields[column] == text)
            }
            if let column = header.firstIndex(of: "kernel_velocity"), case .number(let text)? = step.value("slots.kernel.velocity") {
                #expect(fields[column] == text)
            } else {
                Issue.record("missing kernel_velocity")
            }
        }
    }

    @Test func demoStartsAPrivateDaemonWhenNoneAnswers() throws {
        let h = try DaemonProcess.launchForLtctl()
        let nowhere = h.directory + "/none.sock"
        let demo = try h.ltctl(["demo", "--socket", nowhere, "--pace", "10ms"])
        #expect(demo.status == 0, "\(demo.stderr)")
        #expect(demo.stderr.contains("started a private one"))
        #expect(demo.stdout.contains("── end: finished after 12 steps"))
        #expect(demo.stdout.contains("Keras prints rmse 13.3978"))
        // And with a daemon running, demo uses it: the job stays there.
        let shared = try h.ltctl(["demo", "--pace", "10ms"])
        #expect(shared.status == 0)
        let jobs = try JSONParser.parse(try h.ltctl(["list", "--json"]).stdout).arrayValue ?? []
        #expect(jobs.contains { $0["job"]?.stringValue?.hasPrefix("demo-") == true })
    }

    @Test func completionScriptAndHelp() throws {
        let h = try DaemonProcess.launchForLtctl()
        let bash = try h.ltctl(["--generate-completion-script", "bash"])
        #expect(bash.status == 0)
        #expect(bash.stdout.contains("ltctl"))
        let help = try h.ltctl(["--help"])
        #expect(help.stdout.contains("Exit codes"))
        for command in ["start", "tail", "list", "status", "pause", "resume", "step", "cancel", "delete", "prune", "board", "compare", "explain", "export", "top", "demo"] {
            #expect(help.stdout.contains("  \(command) "), "\(command) is listed")
        }
    }
}
