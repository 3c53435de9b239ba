#if canImport(Glibc)
import Glibc
#endif
import Testing
import LTDaemon

/// What ltd reads from systemd's environment: `NOTIFY_SOCKET`, `WATCHDOG_USEC`/`WATCHDOG_PID` and
/// `LISTEN_PID`/`LISTEN_FDS`/`LISTEN_FDNAMES`. Pure parsing; the sockets themselves are tested end to end.
@Suite struct SystemdNotifierParsingTests {
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

@Suite struct ListenFDsParsingTests {
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
}
