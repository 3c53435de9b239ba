import Foundation
import LTProtocol
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A state directory written by the ltd before its seeded shuffle became Keras's (commit 085e65b, by
/// Fixtures/state-before-keras/make-state.py): job `seeded` (`{"seed": 42}`) and job `drawn` (`true`, stored as
/// `{"seed": N, "every_epoch": true}`), each paused after 5 of 9 steps, plus the event logs of the same two specs run
/// to the end uninterrupted by that daemon. Today's daemon must restore both and finish them with exactly that stream.
@Suite("jobs stored before ltd emulated Keras's shuffle", .serialized)
struct StoredJobTests {
    static let fixture = Paths.endToEndTests.appendingPathComponent("Fixtures/state-before-keras").path

    /// Copies the fixture's jobs into a fresh state directory in the layout of the daemons before names per owner
    /// (`state/jobs/NAME`), owned by whoever runs the test unless `owners` says otherwise.
    static func oldStateDirectory(owners: [String: uid_t] = [:]) throws -> String {
        let directory = try Paths.temporaryDirectory("stored")
        let files = FileManager.default
        let jobs = directory + "/state/jobs"
        try files.createDirectory(atPath: directory + "/state", withIntermediateDirectories: true,
                                  attributes: [.posixPermissions: 0o700])
        try files.copyItem(atPath: Self.fixture + "/jobs", toPath: jobs)
        for job in ["seeded", "drawn"] {
            let meta = "{\"job\":\"\(job)\",\"owner\":\(owners[job] ?? getuid()),\"created\":\"2026-12-02T06:06:51Z\"}"
            try Data(meta.utf8).write(to: URL(fileURLWithPath: jobs + "/\(job)/meta.json"))
        }
        return directory
    }

    /// Step, epoch and end events without `job` and `seq` (state events differ: the stored job was paused), and
    /// without `batch_rmse`, which step events carry since the reference was written.
    func trainingEvents(_ lines: [[UInt8]]) throws -> [JSONValue] {
        try lines.map { try JSONParser.parse($0.dropLast()) }
            .filter { ["step", "epoch", "end"].contains($0["type"]?.stringValue ?? "") }
            .map { event in
                .object((event.objectMembers ?? []).filter { !["job", "seq", "batch_rmse"].contains($0.key) })
            }
    }

    @Test("a seeded job and a `true` job from before restore and finish with the stream they started")
    func restoresTheOrderTheyStartedWith() throws {
        let daemon = try DaemonProcess.launch(tag: "stored", directory: try Self.oldStateDirectory())
        defer { daemon.cleanUp() }
        let client = try LineClient(path: daemon.socketPath)
        for job in ["seeded", "drawn"] {
            let status = try client.request("{\"op\":\"status\",\"job\":\"\(job)\"}")
            #expect(status["status"]?["state"]?.stringValue == "paused", "\(job)")
            #expect(status["status"]?["iteration"]?.intValue == 5, "\(job)")
            #expect(try client.request("{\"op\":\"resume\",\"job\":\"\(job)\"}")["state"]?.stringValue == "running")
            let watcher = try LineClient(path: daemon.socketPath)
            _ = try watcher.request("{\"op\":\"subscribe\",\"job\":\"\(job)\",\"from\":1}")
            let restored = try trainingEvents(try watcher.readUntilEnd(timeout: .seconds(30)))
            let reference = try trainingEvents(try NDJSON.lines(ofFile: Self.fixture + "/\(job)-reference.events.ndjson"))
            #expect(restored.count == 9 + 3 + 1, "\(job)")
            #expect(restored == reference, "\(job): the restored run differs from the old daemon's uninterrupted one")
        }
        // The old order of seed 42, not Keras's [11, 10, 9, 7], [0, 4, 6, 8], [2, 5, 3, 1].
        let log = try trainingEvents(try NDJSON.lines(ofFile: daemon.logPath(job: "seeded")))
        let rows = log.filter { $0["type"]?.stringValue == "step" }.map { $0["batch"]?["indices"]?.arrayValue?.compactMap(\.intValue) ?? [] }
        #expect(Array(rows.suffix(3)) == [[9, 7, 11, 5], [4, 10, 6, 0], [3, 2, 1, 8]])
        #expect(try daemon.stop() == 0)
    }
}
