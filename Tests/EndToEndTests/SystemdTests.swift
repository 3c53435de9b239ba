import Foundation
import Testing
import LTDaemon
#if canImport(Glibc)
import Glibc
#endif

/// The systemd glue in isolation: sd_notify datagrams to a socket the test binds, the LISTEN_FDS rules, the
/// watchdog interval, and the unit files through `systemd-analyze`.
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

    @Test(arguments: [
        [:],
        ["NOTIFY_SOCKET": ""],
        ["NOTIFY_SOCKET": "@"],
        ["NOTIFY_SOCKET": "relative/path"],
        ["NOTIFY_SOCKET": "vsock:2:1234"],
        ["NOTIFY_SOCKET": "/" + String(repeating: "x", count: 200)],
    ])
    func refusesUnusableAddresses(environment: [String: String]) {
        #expect(SystemdNotifier(environment: environment) == nil)
    }

    @Test func acceptsTheLongestPathThatFits() {
        // 107 bytes plus the NUL fill sun_path exactly; one more does not fit.
        let fits = "/" + String(repeating: "a", count: 106)
        #expect(SystemdNotifier(environment: ["NOTIFY_SOCKET": fits]) != nil)
        #expect(SystemdNotifier(environment: ["NOTIFY_SOCKET": fits + "a"]) == nil)
    }

    @Test func watchdogIntervalIsHalfOfWatchdogUsec() {
        let me = getpid()
        #expect(SystemdNotifier.watchdogInterval(environment: ["WATCHDOG_USEC": "30000000"], pid: me) == .seconds(15))
        #expect(SystemdNotifier.watchdogInterval(environment: ["WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "\(me)"], pid: me) == .seconds(15))
        #expect(SystemdNotifier.watchdogInterval(environment: ["WATCHDOG_USEC": "3"], pid: me) == .microseconds(1))
    }

    @Test(arguments: [
        [:],
        ["WATCHDOG_USEC": "0"],
        ["WATCHDOG_USEC": "1"],
        ["WATCHDOG_USEC": "-5"],
        ["WATCHDOG_USEC": "15s"],
        ["WATCHDOG_USEC": "99999999999999999999999"],
        ["WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"],
        ["WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "not-a-pid"],
    ])
    func watchdogIsOffUnlessMeantForUs(environment: [String: String]) {
        // pid 4242 is "us" here, so WATCHDOG_PID=1 names another process.
        #expect(SystemdNotifier.watchdogInterval(environment: environment, pid: 4242) == nil)
    }
}

@Suite struct ListenFDsTests {
    @Test func passedDescriptorsStartAtThree() {
        let passed = ListenFDs.parse(environment: ["LISTEN_PID": "77", "LISTEN_FDS": "2", "LISTEN_FDNAMES": "ltd.socket:extra"], pid: 77)
        #expect(passed == [ListenFDs.Named(fd: 3, name: "ltd.socket"), ListenFDs.Named(fd: 4, name: "extra")])
    }

    @Test func missingNamesAreUnknown() {
        let passed = ListenFDs.parse(environment: ["LISTEN_PID": "77", "LISTEN_FDS": "3", "LISTEN_FDNAMES": "a::"], pid: 77)
        #expect(passed.map(\.name) == ["a", "unknown", "unknown"])
        #expect(ListenFDs.parse(environment: ["LISTEN_PID": "77", "LISTEN_FDS": "1"], pid: 77).map(\.name) == ["unknown"])
    }

    @Test(arguments: [
        [:],
        ["LISTEN_FDS": "1"],
        ["LISTEN_PID": "78", "LISTEN_FDS": "1"],
        ["LISTEN_PID": "77", "LISTEN_FDS": "0"],
        ["LISTEN_PID": "77", "LISTEN_FDS": "-1"],
        ["LISTEN_PID": "77", "LISTEN_FDS": "one"],
        ["LISTEN_PID": "77", "LISTEN_FDS": "65"],
        ["LISTEN_PID": "77", "LISTEN_FDS": "99999999999999999999"],
        ["LISTEN_PID": " 77", "LISTEN_FDS": "1"],
    ])
    func nothingIsPassedUnlessMeantForUs(environment: [String: String]) {
        #expect(ListenFDs.parse(environment: environment, pid: 77).isEmpty)
    }

    @Test func recognisesOnlyAListeningUnixStreamSocket() throws {
        let directory = try Paths.temporaryDirectory("fds")
        defer { Paths.remove(directory) }

        let listener = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        try #require(listener >= 0)
        defer { close(listener) }
        var (address, length) = try unixAddress(directory + "/listen.sock")
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, length) } }
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
