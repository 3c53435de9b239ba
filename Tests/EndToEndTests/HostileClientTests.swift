import Foundation
import LTProtocol
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Clients that misbehave on purpose or by accident (issue 12): closing mid-subscription, flooding requests
/// without reading, opening connections without end. The daemon holds nothing for them for long, queues only a
/// bounded amount for each, and other clients go on being served.
@Suite("ltd against hostile clients", .serialized)
struct HostileClientTests {
    static func openFDs(_ pid: pid_t) -> Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? -1
    }

    @Test("subscribers that close on a paused job release their sockets at once")
    func closedSubscribersOnAnIdleJob() throws {
        let daemon = try DaemonProcess.launch(tag: "hup")
        defer { daemon.cleanUp() }
        let control = try LineClient(path: daemon.socketPath)
        #expect(try control.request("{\"op\":\"start\",\"job\":\"idle\",\"spec\":\(JobSpecs.noisyLine(paused: true))}")["type"]?.stringValue == "started")
        let baseline = Self.openFDs(daemon.pid)
        for _ in 0..<200 {
            let watcher = try LineClient(path: daemon.socketPath)
            #expect(try watcher.request("{\"op\":\"subscribe\",\"job\":\"idle\",\"types\":[\"end\"]}")["type"]?.stringValue == "subscribed")
            // The watcher goes out of scope: its socket closes without a word.
        }
        // Noticed at the EOF, not at the next write (the paused job never writes).
        try waitUntil("the daemon to drop 200 closed subscribers", timeout: .seconds(10)) { Self.openFDs(daemon.pid) <= baseline + 2 }

        // A half-closed subscriber (EOF sent, still reading) keeps its stream; when it later closes, it is dropped too.
        let halfClosed = try LineClient(path: daemon.socketPath)
        #expect(try halfClosed.request("{\"op\":\"subscribe\",\"job\":\"idle\",\"types\":[\"state\",\"end\"]}")["type"]?.stringValue == "subscribed")
        shutdown(halfClosed.fd, Int32(SHUT_WR))
        #expect(try control.request("{\"op\":\"cancel\",\"job\":\"idle\"}")["type"]?.stringValue == "ok")
        let rest = try halfClosed.readUntilEnd()
        #expect(rest.last.map { String(decoding: $0, as: UTF8.self).hasPrefix("{\"type\":\"end\"") } == true)
        #expect(try daemon.stop() == 0)
    }

    @Test("a half-closed subscriber that then goes away is dropped while its job idles")
    func halfClosedThenGone() throws {
        let daemon = try DaemonProcess.launch(tag: "halfhup")
        defer { daemon.cleanUp() }
        let control = try LineClient(path: daemon.socketPath)
        #expect(try control.request("{\"op\":\"start\",\"job\":\"idle\",\"spec\":\(JobSpecs.noisyLine(paused: true))}")["type"]?.stringValue == "started")
        let baseline = Self.openFDs(daemon.pid)
        var watchers: [LineClient] = []
        for _ in 0..<50 {
            let watcher = try LineClient(path: daemon.socketPath)
            #expect(try watcher.request("{\"op\":\"subscribe\",\"job\":\"idle\",\"types\":[\"end\"]}")["type"]?.stringValue == "subscribed")
            shutdown(watcher.fd, Int32(SHUT_WR))
            watchers.append(watcher)
        }
        usleep(300_000)
        #expect(Self.openFDs(daemon.pid) >= baseline + 50, "a half-closed subscriber keeps its stream")
        watchers = []
        try waitUntil("the daemon to drop 50 vanished subscribers", timeout: .seconds(10)) { Self.openFDs(daemon.pid) <= baseline + 2 }
        #expect(try daemon.stop() == 0)
    }
}
