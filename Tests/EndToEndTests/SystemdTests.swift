import Foundation
import Testing
import LTDaemon
#if canImport(Glibc)
import Glibc
#endif

/// The systemd glue against real sockets: sd_notify datagrams to a socket the test binds, recognising a listening
/// socket, and the unit files through `systemd-analyze`. (Parsing the environment: Tests/LTDaemonTests.)
@Suite struct SystemdNotifierTests {
    @Test func sendsOneDatagramToAPathSocket() throws {
        let directory = try Paths.temporaryDirectory("notify")
        defer { Paths.remove(directory) }
        let path = directory + "/notify"
        let receiver = try NotifySocket(name: path)
        let notifier = try #require(SystemdNotifier(environment: ["NOTIFY_SOCKET": path]))

        #expect(notifier.send("READY=1\nSTATUS=0 jobs, 0 subscribers"))
        #expect(receiver.receive(timeout: .seconds(5)) == "READY=1\nSTATUS=0 jobs, 0 subscribers")
        #expect(notifier.send("STOPPING=1"))
        #expect(receiver.receive(timeout: .seconds(5)) == "STOPPING=1")
    }

    @Test func sendsToTheAbstractNamespace() throws {
        let name = "@ltd-test-notify-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let receiver = try NotifySocket(name: name)
        let notifier = try #require(SystemdNotifier(environment: ["NOTIFY_SOCKET": name]))

        #expect(notifier.send("WATCHDOG=1"))
        #expect(receiver.receive(timeout: .seconds(5)) == "WATCHDOG=1")
    }

    @Test func reportsAFailedSend() throws {
        let directory = try Paths.temporaryDirectory("notify")
        defer { Paths.remove(directory) }
        let notifier = try #require(SystemdNotifier(environment: ["NOTIFY_SOCKET": directory + "/nobody-listens"]))
        #expect(notifier.send("READY=1") == false)
    }
}

@Suite struct ListenFDsTests {
    @Test func recognisesOnlyAListeningUnixStreamSocket() throws {
        let directory = try Paths.temporaryDirectory("fds")
        defer { Paths.remove(directory) }

        let listener = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        try #require(listener >= 0)
        defer { close(listener) }
        let bound = try unixAddress(directory + "/listen.sock").withSockaddr { bind(listener, $0, $1) }
        try #require(bound == 0)
        #expect(ListenFDs.isListeningUnixStream(listener) == false, "bound but not yet listening")
        try #require(listen(listener, 8) == 0)
        #expect(ListenFDs.isListeningUnixStream(listener))

        let datagram = try NotifySocket(name: directory + "/dgram.sock")
        #expect(ListenFDs.isListeningUnixStream(datagram.fd) == false)

        var pipeEnds: [Int32] = [0, 0]
        try #require(pipe(&pipeEnds) == 0)
        defer { close(pipeEnds[0]); close(pipeEnds[1]) }
        #expect(ListenFDs.isListeningUnixStream(pipeEnds[0]) == false)
        #expect(ListenFDs.isListeningUnixStream(-1) == false)
    }
}

@Suite struct UnitFileTests {
    /// `scripts/verify-units` fails on any output from `systemd-analyze verify`, so it must pass on ours.
    @Test func unitsVerifyWithoutAnyWarning() throws {
        let result = try Command.run(["bash", Paths.script("verify-units"), "--ltd", Paths.ltd], stderr: .intoStdout, timeout: .seconds(300))
        #expect(result.status == 0, "\(result.stdout)")
        #expect(result.stdout.contains("system units: systemd-analyze verify is silent"))
        #expect(result.stdout.contains("user units: systemd-analyze verify is silent"))
    }

    /// The check is not vacuous: a misspelt key (which verify reports with exit code 0) and weakened hardening
    /// must both make it fail.
    @Test func verificationCatchesAWarningAndWeakHardening() throws {
        let copy = try Paths.temporaryDirectory("units")
        defer { Paths.remove(copy) }
        let source = Paths.repositoryRoot.appendingPathComponent("systemd").path
        let copied = try Command.run(["cp", "-R", source + "/.", copy], stderr: .intoStdout)
        try #require(copied.status == 0, "\(copied.stdout)")

        let userService = copy + "/user/ltd.service"
        let text = try String(contentsOfFile: userService, encoding: .utf8)
        try text.replacingOccurrences(of: "UMask=", with: "UMaks=").write(toFile: userService, atomically: true, encoding: .utf8)

        let systemService = copy + "/ltd.service"
        let hardened = try String(contentsOfFile: systemService, encoding: .utf8)
        let weakened = hardened.split(separator: "\n", omittingEmptySubsequences: false)
            .filter { !$0.hasPrefix("Protect") && !$0.hasPrefix("Private") && !$0.hasPrefix("SystemCallFilter") }
            .joined(separator: "\n")
        try weakened.write(toFile: systemService, atomically: true, encoding: .utf8)

        let result = try Command.run(["bash", Paths.script("verify-units"), "--ltd", Paths.ltd, copy], stderr: .intoStdout, timeout: .seconds(300))
        #expect(result.status != 0)
        #expect(result.stdout.contains("Unknown key 'UMaks'"), "\(result.stdout)")
        #expect(result.stdout.contains("exceeds"), "\(result.stdout)")
    }

    /// `PrivateUsers=yes` scores better, and makes every caller nobody (65534) under the real unit: the check names it.
    @Test func verificationRefusesAUnitThatHidesCallers() throws {
        let copy = try Paths.temporaryDirectory("units")
        defer { Paths.remove(copy) }
        let source = Paths.repositoryRoot.appendingPathComponent("systemd").path
        let copied = try Command.run(["cp", "-R", source + "/.", copy], stderr: .intoStdout)
        try #require(copied.status == 0, "\(copied.stdout)")
        let systemService = copy + "/ltd.service"
        let text = try String(contentsOfFile: systemService, encoding: .utf8)
        try text.replacingOccurrences(of: "PrivateMounts=yes\n", with: "PrivateMounts=yes\nPrivateUsers=yes\n")
            .write(toFile: systemService, atomically: true, encoding: .utf8)

        let result = try Command.run(["bash", Paths.script("verify-units"), "--ltd", Paths.ltd, copy], stderr: .intoStdout, timeout: .seconds(300))
        #expect(result.status != 0)
        #expect(result.stdout.contains("ltd.service sets PrivateUsers=yes: callers would not keep their real uids"), "\(result.stdout)")
        #expect(result.stdout.contains("exposure 0.2"), "the score alone would have passed it: \(result.stdout)")
    }
}
