#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import LTDaemon
import LTEngine
import LTProtocol

/// The state directory is not trusted blindly: its format version, each checkpoint's version and numbers, symbolic
/// links, and the fault-injection hook's settings.
@Suite struct StateTrustTests {
    static func temporaryDirectory() throws -> String {
        var template = Array("/tmp/ltd-state-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { buffer in buffer.baseAddress.flatMap { mkdtemp($0) } }
        try #require(made != nil)
        return String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    static func write(_ text: String, to path: String) throws {
        try FileIO.writeAtomically(Array(text.utf8), to: path, directory: "/tmp")
    }

    static let j1 = JobKey(owner: 1000, name: "j1")

    /// A state directory holding one job, "j1" of uid 1000, with a log of `log` and the checkpoint `checkpoint`.
    static func store(log: String, checkpoint: JobCheckpoint) throws -> StateStore {
        let store = StateStore(root: try temporaryDirectory())
        try store.prepare()
        let spec = try JobSpec(json: try JSONParser.parse(Array(#"{"data":{"x":[1,2,3],"y":[2,4,6]},"optimizer":{"name":"sgd","learning_rate":0.1}}"#.utf8)))
        try store.create(job: Self.j1, spec: spec, owner: 1000, created: "2026-12-02T00:00:00Z", checkpoint: checkpoint)
        try write(log, to: store.jobFiles(Self.j1).events)
        return store
    }

    static func checkpoint(seq: Int, offset: Int, version: Int = JobCheckpoint.currentVersion, state: JobState = .finished) -> JobCheckpoint {
        var c = JobCheckpoint(seq: seq, offset: offset, state: state, summary: JobSummary(state: state), trainer: nil)
        c.version = version
        return c
    }

    static func loadError(_ store: StateStore) -> String? {
        do { _ = try store.load(job: Self.j1); return nil } catch { return error.description }
    }

    @Test("a checkpoint whose numbers the log cannot hold is refused with the reason (seq = Int64.max used to trap)")
    func checkpointNumbersAreBounded() throws {
        let log = "{\"type\":\"start\",\"job\":\"j1\",\"seq\":1}\n"
        let good = try Self.store(log: log, checkpoint: Self.checkpoint(seq: 1, offset: log.utf8.count))
        #expect(try good.load(job: Self.j1).checkpoint?.seq == 1)
        for (seq, offset) in [(Int.max, Int.max), (Int.max, 10), (1, log.utf8.count + 1), (-1, 0), (0, -5)] {
            let store = try Self.store(log: log, checkpoint: Self.checkpoint(seq: seq, offset: offset))
            let reason = Self.loadError(store)
            #expect(reason?.contains("claims \(seq) event(s) in \(offset) byte(s) of log, but the log holds \(log.utf8.count) byte(s)") == true, "\(seq), \(offset): \(reason ?? "loaded")")
        }
    }

    @Test("a checkpoint of a newer format version is refused, naming both versions")
    func checkpointVersionIsChecked() throws {
        let store = try Self.store(log: "", checkpoint: Self.checkpoint(seq: 0, offset: 0, version: JobCheckpoint.currentVersion + 1))
        let reason = Self.loadError(store)
        #expect(reason?.contains("has format version \(JobCheckpoint.currentVersion + 1); this ltd reads version \(JobCheckpoint.currentVersion)") == true, "\(reason ?? "loaded")")
    }

    @Test("a checkpoint that exists but cannot be read is an error, never taken for a missing one")
    func unreadableCheckpointIsNotMissing() throws {
        let store = try Self.store(log: "", checkpoint: Self.checkpoint(seq: 0, offset: 0))
        let path = store.jobFiles(Self.j1).checkpoint
        unlink(path)
        #expect(try store.load(job: Self.j1).checkpoint == nil)   // missing: none yet
        #expect(mkdir(path, 0o700) == 0)                        // there, but not a readable file
        #expect(Self.loadError(store)?.contains("checkpoint.json") == true)
        rmdir(path)
        try Self.write("{\"seq\":", to: path)                   // torn
        #expect(Self.loadError(store)?.contains("is not a checkpoint this ltd can read") == true)
    }

    @Test("a spec or meta that cannot be read is an error naming the file and why")
    func unreadableSpecNamesItsFile() throws {
        let store = try Self.store(log: "", checkpoint: Self.checkpoint(seq: 0, offset: 0))
        let files = store.jobFiles(Self.j1)
        let spec = try FileIO.readAll(path: files.spec)
        try Self.write("{\"data\":", to: files.spec)
        #expect(Self.loadError(store)?.hasPrefix(files.spec + ": ") == true, "\(Self.loadError(store) ?? "loaded")")
        try Self.write("{\"data\":{\"x\":[1],\"y\":[2]},\"optimizer\":{\"name\":\"sgd\",\"learning_rate\":-1}}", to: files.spec)
        #expect(Self.loadError(store)?.hasPrefix(files.spec + " is not a spec this ltd can run: ") == true, "\(Self.loadError(store) ?? "loaded")")
        try FileIO.writeAtomically(spec, to: files.spec, directory: files.directory)
        try Self.write("{\"job\":\"j1\"}", to: files.meta)
        #expect(Self.loadError(store) == files.meta + " has no owner uid")
    }

    @Test("state files are never opened through a symbolic link")
    func symbolicLinksAreRefused() throws {
        let log = "{\"type\":\"start\",\"job\":\"j1\",\"seq\":1}\n"
        let store = try Self.store(log: log, checkpoint: Self.checkpoint(seq: 1, offset: log.utf8.count))
        let files = store.jobFiles(Self.j1)
        let elsewhere = files.directory + "/elsewhere.json"
        #expect(rename(files.checkpoint, elsewhere) == 0)
        #expect(symlink(elsewhere, files.checkpoint) == 0)
        #expect(Self.loadError(store)?.contains(errnoText(ELOOP)) == true)
        // A planted link at the temporary name is not written through either.
        unlink(files.checkpoint)
        #expect(symlink(elsewhere, files.checkpoint + ".tmp") == 0)
        #expect(throws: SystemError.self) { try FileIO.writeAtomically(Array("x".utf8), to: files.checkpoint, directory: files.directory) }
        #expect(try FileIO.readAll(path: elsewhere) != Array("x".utf8))
    }

    @Test("the state directory's format version is written when missing, accepted when current, refused when newer or unreadable")
    func formatVersion() throws {
        let root = try Self.temporaryDirectory()
        let store = StateStore(root: root)
        try store.prepare()
        #expect(try FileIO.readAll(path: root + "/format") == Array("\(StateStore.formatVersion)\n".utf8))
        try store.prepare()
        try Self.write("\(StateStore.formatVersion + 1)\n", to: root + "/format")
        do { try store.prepare(); Issue.record("a newer format was accepted") } catch {
            guard case .newerFormat(let found, _) = error else { Issue.record("\(error)"); return }
            #expect(found == StateStore.formatVersion + 1)
            #expect(error.description.contains("newer than this ltd reads (\(StateStore.formatVersion))"))
        }
        try Self.write("version one\n", to: root + "/format")
        do { try store.prepare(); Issue.record("an unreadable format was accepted") } catch {
            guard case .unreadableFormat = error else { Issue.record("\(error)"); return }
        }
    }

    @Test("the least bytes a job writes saturate instead of overflowing on any client numbers")
    func leastBytesSaturate() throws {
        let spec = try JobSpec(json: try JSONParser.parse(Array(#"{"data":{"x":[1,2,3],"y":[2,4,6]},"optimizer":{"name":"sgd","learning_rate":0.1}}"#.utf8)))
        let small = DiskLimits.leastBytes(of: spec, totalSteps: 10)
        #expect(small.log == 10 * 200 + 3 * 4 && small.state == 10 * 200 + 3 * 4 * 2)
        let huge = DiskLimits.leastBytes(of: spec, totalSteps: Int.max)
        #expect(huge.log == Int.max && huge.state == Int.max)
        #expect(DiskLimits.leastBytes(of: spec, totalSteps: Int.max / 200).state == Int.max)
        let budget = DiskBudget(limits: DiskLimits(maxLogBytes: 1000, maxStateBytes: 1500, maxBytesPerUser: 1200))
        #expect(budget.take(1000, logAt: 0, owner: 1) == nil)
        #expect(budget.take(1, logAt: 1000, owner: 1)?.contains("--max-log-bytes") == true)
        #expect(budget.take(Int.max, logAt: 1, owner: 1)?.contains("--max-log-bytes") == true)
        #expect(budget.take(300, logAt: 0, owner: 1)?.contains("--max-bytes-per-user; they take 1000") == true)
        #expect(budget.take(600, logAt: 0, owner: 2)?.contains("--max-state-bytes") == true)
        #expect(budget.take(400, logAt: 0, owner: 2) == nil)
        #expect(budget.usedBytes == 1400 && budget.usedBytes(of: 1) == 1000 && budget.usedBytes(of: 2) == 400)
        #expect(DiskLimits.saturating(2, plus: 3) == 5 && DiskLimits.saturating(Int.max - 1, plus: 2) == Int.max)
        budget.add(Int.max, owner: 2)
        #expect(budget.usedBytes == Int.max && budget.usedBytes(of: 2) == Int.max)
        budget.add(1, owner: 2)
        #expect(budget.usedBytes == Int.max && budget.usedBytes(of: 2) == Int.max)
        budget.release(Int.max, owner: 2)
        #expect(budget.usedBytes == 0 && budget.usedByOwner == [1: 1000])
        budget.release(Int.max, owner: 1)
        #expect(budget.usedByOwner.isEmpty)
    }

    @Test("the fault-injection hook's setting is parsed strictly")
    func faultPlanSettings() throws {
        let write = try FaultPlan.parse("write:7").get()
        #expect(write.operation == .write && write.nth == 7 && !write.persistent && write.code == ENOSPC)
        let fsync = try FaultPlan.parse("fsync:3+").get()
        #expect(fsync.operation == .fsync && fsync.nth == 3 && fsync.persistent && fsync.code == EIO)
        #expect(try FaultPlan.parse("rename:1:EDQUOT").get().code == EDQUOT)
        for bad in ["", "write", "write:0", "write:-1", "read:1", "write:1:EPERM", "write:1:EIO:x", "write:x+"] {
            #expect(throws: FaultPlan.Malformed.self, "\(bad)") { try FaultPlan.parse(bad).get() }
        }
    }
}
