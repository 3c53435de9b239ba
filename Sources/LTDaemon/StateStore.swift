#if canImport(Glibc)
import Glibc
#endif
import LTEngine
import LTProtocol

/// The files of one job's directory; their names are spelled here only.
struct JobFiles: Sendable {
    let directory: String
    var spec: String { directory + "/spec.json" }
    var meta: String { directory + "/meta.json" }
    var events: String { directory + "/events.ndjson" }
    var checkpoint: String { directory + "/checkpoint.json" }
}

/// The daemon's state directory:
///
///     DIR/jobs/NAME/spec.json         the resolved spec (what `start` carried, seeds filled in)
///     DIR/jobs/NAME/meta.json         {"job":…, "owner": uid, "created": RFC 3339, "kind": "external" for a published job}
///     DIR/jobs/NAME/events.ndjson     the append-only event log, one line per event, seq 1, 2, 3, …
///     DIR/jobs/NAME/checkpoint.json   the latest JobCheckpoint
///
/// Names are validated job names, so paths never leave the directory. Nothing here opens a client-named path.
struct StateStore {
    let root: String
    var jobsDirectory: String { root + "/jobs" }
    func jobFiles(_ job: String) -> JobFiles { JobFiles(directory: jobsDirectory + "/" + job) }

    /// The layout of the state directory that this ltd reads and writes, recorded in `DIR/format` (the number and a
    /// newline). A directory without the file (new, or written before it existed) has this layout, and gets it.
    /// A later ltd that changes the layout raises the number, so an older ltd refuses the directory instead of
    /// misreading it.
    static let formatVersion = 1
    var formatFile: String { root + "/format" }

    enum PrepareError: Error, CustomStringConvertible {
        case system(SystemError)
        /// The directory is in a layout newer than this ltd reads.
        case newerFormat(found: Int, path: String)
        case unreadableFormat(path: String, text: String)

        var description: String {
            switch self {
            case .system(let error): return "\(error)"
            case .newerFormat(let found, let path):
                return "\(path) says the state directory has format version \(found), newer than this ltd reads (\(StateStore.formatVersion)); run the newer ltd that wrote it, or point --state-dir at another directory"
            case .unreadableFormat(let path, let text):
                return "\(path) should hold the state directory's format version (a number), but holds \"\(text)\"; restore it (version \(StateStore.formatVersion) is this ltd's) or point --state-dir at another directory"
            }
        }
    }

    /// Room kept free for a full disk: `DiskBudget.freeReserve` deletes it when a write fails, so that the jobs
    /// that fail can still write their final events and checkpoint. Made again at each start when there is room.
    var reserveFile: String { root + "/reserve" }
    static let reserveBytes = 256 * 1024

    /// Makes the reserve if it is missing; false (and nothing left behind) when the disk has no room for it.
    func makeReserve() -> Bool {
        guard FileIO.size(reserveFile) < StateStore.reserveBytes else { return true }
        let fd = FileIO.open(reserveFile, O_WRONLY | O_CREAT)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        guard posix_fallocate(fd, 0, off_t(StateStore.reserveBytes)) == 0 else {
            unlink(reserveFile)
            return false
        }
        return true
    }

    /// Creates the directory if needed and checks (or records) its format version.
    func prepare() throws(PrepareError) {
        do { try FileIO.makeDirectories(jobsDirectory, mode: 0o700) } catch { throw .system(error) }
        let bytes: [UInt8]
        do { bytes = try FileIO.readAll(path: formatFile, limit: 4096) } catch {
            guard error.code == ENOENT else { throw .system(error) }
            let current = Array("\(StateStore.formatVersion)\n".utf8)
            do { try FileIO.writeAtomically(current, to: formatFile, directory: root) } catch { throw .system(error) }
            return
        }
        let text = String(decoding: bytes.prefix(64), as: UTF8.self)
        let digits = text.hasSuffix("\n") ? String(text.dropLast()) : text
        guard let found = Int(digits), found >= 1 else { throw .unreadableFormat(path: formatFile, text: text) }
        guard found <= StateStore.formatVersion else { throw .newerFormat(found: found, path: formatFile) }
    }

    /// The bytes of `spec.json` (pure; large specs have this done off the loop thread).
    static func specFile(_ spec: JobSpec) -> [UInt8] {
        var writer = JSONWriter(precision: .float64, capacity: 4096 + 24 * (spec.data.x.count + (spec.validation?.x.count ?? 0)) * 2)
        writer.value(spec.json)
        writer.newline()
        return writer.bytes
    }

    /// Records a new job: its directory, spec, meta and initial checkpoint, each file fsynced (a crash must not leave
    /// a renamed but empty spec), then the jobs directory. On failure, removes what it wrote.
    func create(job: String, spec: JobSpec, specFile: [UInt8]? = nil, owner: UInt32, created: String, checkpoint: JobCheckpoint,
                kind: JobKind = .native) throws(SystemError) {
        let files = jobFiles(job)
        let dir = files.directory
        guard mkdir(dir, 0o700) == 0 else { throw SystemError(operation: "mkdir", path: dir, code: errno) }
        do throws(SystemError) {
            try FileIO.writeAtomically(specFile ?? StateStore.specFile(spec), to: files.spec, directory: dir)
            var meta = JSONWriter(precision: .float64, capacity: 128)
            meta.beginObject()
            meta.field("job", job)
            meta.key("owner"); meta.integer(UInt64(owner))
            meta.field("created", created)
            if kind != .native { meta.field("kind", kind.rawValue) }
            meta.endObject()
            meta.newline()
            try FileIO.writeAtomically(meta.bytes, to: files.meta, directory: dir)
            try checkpoint.write(to: files)
            try FileIO.syncDirectory(jobsDirectory)
        } catch {
            try? FileIO.removeTree(dir)
            throw error
        }
    }

    /// Moves a deleted job's directory out of the way (one rename), so its name is free at once; the returned
    /// directory is then removed off the loop thread. Its name starts with a dot, which no job name does.
    func retire(job: String) throws(SystemError) -> String {
        let from = jobFiles(job).directory
        let to = jobsDirectory + "/.deleted-" + job + "-\(getpid())-\(Clock.monotonicNanoseconds())"
        try FileIO.rename(from, to: to)
        return to
    }

    /// Retired directories a previous run did not finish removing.
    func retiredDirectories() -> [String] {
        ((try? FileIO.list(jobsDirectory)) ?? []).filter { $0.hasPrefix(".deleted-") }.map { jobsDirectory + "/" + $0 }
    }

    /// What a job directory holds, as far as it can be read.
    struct StoredJob {
        var name: String
        var spec: JobSpec
        var owner: UInt32
        var created: String
        var checkpoint: JobCheckpoint?
        var kind: JobKind = .native
    }

    enum LoadError: Error, CustomStringConvertible {
        case unreadable(String)
        var description: String { if case .unreadable(let why) = self { return why }; return "" }
    }

    /// What `--max-state-bytes` counts: every job directory's spec and log. `runningLogs` gives, for jobs whose
    /// thread already appends, the log size their thread counts on from (its start offset).
    func bytesInUse(runningLogs: [String: Int]) -> Int {
        var total = 0
        for name in (try? jobNames()) ?? [] {
            let files = jobFiles(name)
            total += FileIO.size(files.spec) + (runningLogs[name] ?? FileIO.size(files.events))
        }
        return total
    }

    /// What a job's directory counts against `--max-state-bytes` (given back when it is deleted).
    func bytesInUse(of job: String) -> Int {
        let files = jobFiles(job)
        return FileIO.size(files.spec) + FileIO.size(files.events)
    }

    func jobNames() throws(SystemError) -> [String] {
        try FileIO.list(jobsDirectory).filter { JobName.isValid($0) }
    }

    func load(job name: String) throws(LoadError) -> StoredJob {
        let files = jobFiles(name)
        // Each failure names its file and why, so a job that cannot be restored can be reported as such.
        func json(_ path: String) throws(LoadError) -> JSONValue {
            do { return try JSONParser.parse(try FileIO.readAll(path: path)) } catch {
                throw .unreadable("\(path): \(error)")
            }
        }
        let spec: JobSpec
        do { spec = try JobSpec(storedJSON: try json(files.spec)) } catch let error as LoadError {
            throw error
        } catch {
            throw .unreadable("\(files.spec) is not a spec this ltd can run: \(error)")
        }
        let meta = try json(files.meta)
        guard let uid = meta["owner"]?.uint64Value, uid <= UInt64(UInt32.max) else {
            throw .unreadable("\(files.meta) has no owner uid")
        }
        let owner = UInt32(uid)
        let created = meta["created"]?.stringValue ?? ""
        guard let kind = JobKind(rawValue: meta["kind"]?.stringValue ?? "native") else {
            throw .unreadable("\(files.meta) names an unknown kind of job")
        }
        var checkpoint = try JobCheckpoint.read(path: files.checkpoint, logBytes: FileIO.size(files.events))
        if let c = checkpoint, c.state.isFinal, c.summary.seq == c.seq + 2 {
            checkpoint = completeEnding(c, job: name, precision: spec.precision, files: files)
        }
        return StoredJob(name: name, spec: spec, owner: owner, created: created, checkpoint: checkpoint, kind: kind)
    }

    /// A job ended while its log could not take its last two events (`state` and `end`): its watchers got them, and
    /// its final checkpoint says so (the summary's seq is two past the log's). They are written now, encoded again
    /// from the summary byte for byte, so the log holds everything its watchers saw. Returns the checkpoint in force
    /// (the old one, logged, if the disk still refuses).
    private func completeEnding(_ c: JobCheckpoint, job name: String, precision: Precision, files: JobFiles) -> JobCheckpoint {
        let s = c.summary
        let lines = EventEncoder.state(job: name, seq: c.seq + 1, state: c.state, message: s.message)
            + EventEncoder.end(job: name, seq: c.seq + 2, state: c.state, iteration: s.iteration, epoch: s.epoch,
                               w: s.w, b: s.b, message: s.message, precision: precision)
        var done = c
        done.seq = c.seq + 2
        done.offset = c.offset + lines.count
        do throws(SystemError) {
            guard EventLog.recover(path: files.events, toSeq: c.seq, offset: c.offset) == c.offset else {
                throw SystemError(operation: "cut back", path: files.events, code: EIO)
            }
            try EventLog.appendOwed(lines, path: files.events, at: c.offset)
            try done.write(to: files)
        } catch {
            Log.error("job \(name): its last two events are still missing from its log (\(error)); its watchers will not see its end until they are written")
            return c
        }
        Log.info("job \(name): wrote its final state and end, which its log could not take before")
        return done
    }
}
