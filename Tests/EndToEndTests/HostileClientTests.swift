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

    @Test("a client that floods requests and reads nothing costs a bounded amount, and loses no reply")
    func requestFloodWithoutReading() throws {
        let daemon = try DaemonProcess.launch(tag: "flood")
        defer { daemon.cleanUp() }
        let control = try LineClient(path: daemon.socketPath)
        for i in 0..<40 {
            #expect(try control.request("{\"op\":\"start\",\"job\":\"j\(i)\",\"spec\":\(JobSpecs.noisyLine(paused: true))}")["type"]?.stringValue == "started")
        }
        try control.send("{\"op\":\"list\"}\n")
        let listBytes = try control.readLine()?.count ?? 0
        let baseline = daemon.residentKiB()
        let flooder = try LineClient(path: daemon.socketPath)
        let count = 6_000
        // 6,000 lists of 40 jobs: over 100 MB of replies, asked for in 90 KB.
        try flooder.send(String(repeating: "{\"op\":\"list\"}\n", count: count))
        usleep(1_500_000)
        let grown = daemon.residentKiB() - baseline
        #expect(grown < 24 * 1024, "RSS grew by \(grown) KiB for one client's unread replies (\(listBytes) bytes each)")
        // Everyone else is served meanwhile.
        #expect(try control.request("{\"op\":\"hello\"}", timeout: .seconds(5))["type"]?.stringValue == "hello")
        // Nothing is lost: every request is answered once the client reads.
        var replies = 0
        while replies < count, let line = try flooder.readLine() {
            #expect(line.starts(with: Array("{\"type\":\"jobs\"".utf8)))
            replies += 1
        }
        #expect(replies == count)
        #expect(try daemon.stop() == 0)
    }
}
