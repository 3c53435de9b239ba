import Foundation
import LTProtocol
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A full disk: the state directory on a 1 MiB tmpfs and a job that outgrows it. Needs root for the mount.
@Suite("ltd on a full disk", .serialized)
struct FullDiskTests {
    @Test("a job whose log fills the disk fails naming the cause; nothing written is lost; after a restart it is listed and deletable")
    func logFillsTheDisk() throws {
        guard getuid() == 0 else { return }   // mount(8) needs root
        let directory = try Paths.temporaryDirectory("fulldisk")
        let state = directory + "/state"
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
        let mounted = try Command.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", state])
        guard mounted.status == 0 else { Issue.record("cannot mount a tmpfs: \(mounted)"); return }
        defer { _ = try? Command.run(["umount", "-l", state]); Paths.remove(directory) }
        let daemon = try DaemonProcess.launch(directory: directory)
        let control = try LineClient(path: daemon.socketPath)
        // A small job that finishes first, and stays readable after the disk is full.
        #expect(try control.request("{\"op\":\"start\",\"job\":\"before\",\"spec\":\(JobSpecs.noisyLine())}")["type"]?.stringValue == "started")
        try waitUntil("job before to finish") {
            try control.request("{\"op\":\"status\",\"job\":\"before\"}")["status"]?["state"]?.stringValue == "finished"
        }
        let before = try NDJSON.lines(ofFile: daemon.logPath(job: "before"))
        #expect(try control.request("{\"op\":\"start\",\"job\":\"big\",\"spec\":\(JobSpecs.noisyLine(rows: 12, epochs: 100_000, batch: 1, paused: true))}")["type"]?.stringValue == "started")
        let watcher = try LineClient(path: daemon.socketPath)
        #expect(try watcher.request("{\"op\":\"subscribe\",\"job\":\"big\"}")["type"]?.stringValue == "subscribed")
        #expect(try control.request("{\"op\":\"resume\",\"job\":\"big\"}")["type"]?.stringValue == "ok")
        let stream = try watcher.readUntilEnd()
        let last = try stream.suffix(2).map { try JSONParser.parse($0.dropLast()) }
        #expect(last.first?["state"]?.stringValue == "failed")
        let message = last.first?["message"]?.stringValue ?? ""
        #expect(message.contains("its log cannot be written") && message.contains("No space left on device"), "\(message)")
        #expect(last.last?["type"]?.stringValue == "end")
        #expect(last.last?["state"]?.stringValue == "failed")
        try DiskLimitTests.expectEndMatchesLastStep(stream)
        #expect(try control.request("{\"op\":\"status\",\"job\":\"big\"}")["status"]?["state"]?.stringValue == "failed")

        // The log holds whole events only, each one the watcher saw, in order; the checkpoint agrees with it.
        let log = try NDJSON.lines(ofFile: daemon.logPath(job: "big"))
        #expect(log.count > 100)
        #expect(Array(stream.prefix(log.count)) == log)
        #expect(stream.count - log.count <= 2)   // at most the final state and end, if they found no room
        let checkpoint = try JSONParser.parse(try Data(contentsOf: URL(fileURLWithPath: daemon.checkpointPath(job: "big"))).map { $0 })
        #expect(checkpoint["seq"]?.intValue == log.count)
        #expect(checkpoint["state"]?.stringValue == "failed")
        // The reserve made that room; a restart makes it again.
        #expect(daemon.stderr.contains("freed the reserve"), "\(daemon.stderr)")
        #expect(!FileManager.default.fileExists(atPath: state + "/reserve"))

        // After a restart both jobs are there, the full one failed and deletable; then a new job runs.
        #expect(try daemon.stop() == 0)
        try daemon.start()
        let again = try LineClient(path: daemon.socketPath)
        // The reserve is made by the restore that follows READY=1; `list` waits for that restore to end.
        #expect(try again.request("{\"op\":\"list\"}")["type"]?.stringValue == "jobs")
        #expect(FileManager.default.fileExists(atPath: state + "/reserve"))
        #expect(try again.request("{\"op\":\"status\",\"job\":\"big\"}")["status"]?["state"]?.stringValue == "failed")
        #expect(try again.request("{\"op\":\"status\",\"job\":\"before\"}")["status"]?["state"]?.stringValue == "finished")
        #expect(try NDJSON.lines(ofFile: daemon.logPath(job: "before")) == before)
        #expect(try again.request("{\"op\":\"delete\",\"job\":\"big\"}")["type"]?.stringValue == "ok")
        #expect(try again.request("{\"op\":\"start\",\"job\":\"small\",\"spec\":\(JobSpecs.noisyLine())}")["type"]?.stringValue == "started")
        try waitUntil("the small job to finish") {
            try again.request("{\"op\":\"status\",\"job\":\"small\"}")["status"]?["state"]?.stringValue == "finished"
        }
        #expect(try daemon.stop() == 0)
    }
}
