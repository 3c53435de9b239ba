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

/// The daemon's state directory, one directory per owner (by uid, which outlives a user's name) and job:
///
///     DIR/owners/UID/NAME/spec.json         the resolved spec (what `start` carried, seeds filled in)
///     DIR/owners/UID/NAME/meta.json         {"job":…, "owner": uid, "created": RFC 3339, "kind": "external" for a published job}
///     DIR/owners/UID/NAME/events.ndjson     the append-only event log, one line per event, seq 1, 2, 3, …
///     DIR/owners/UID/NAME/checkpoint.json   the latest JobCheckpoint
///
/// Names are validated job names, so paths never leave the directory. Nothing here opens a client-named path.
/// Daemons before names per owner kept one flat namespace, `DIR/jobs/NAME/`; `migrateFlatLayout` moves those.
struct StateStore {
    let root: String
    var ownersDirectory: String { root + "/owners" }
    /// Where daemons before names per owner kept their jobs.
    var flatJobsDirectory: String { root + "/jobs" }
    func ownerDirectory(_ uid: UInt32) -> String { ownersDirectory + "/" + String(uid) }
    func jobFiles(_ job: JobKey) -> JobFiles { JobFiles(directory: ownerDirectory(job.owner) + "/" + job.name) }

    /// Moves each job of the flat layout, `DIR/jobs/NAME`, to `DIR/owners/UID/NAME` (one rename each, its files
    /// untouched), UID being the owner its meta.json records. Old names were unique, so nothing collides; a job whose
    /// meta.json cannot be read stays where it is, reported. Safe to repeat after a crash halfway.
    func migrateFlatLayout() {
        guard FileIO.exists(flatJobsDirectory), let names = try? FileIO.list(flatJobsDirectory) else { return }
        var moved = 0
        for name in names where JobName.isValid(name) {
            let from = flatJobsDirectory + "/" + name
            guard let meta = try? JSONParser.parse(try FileIO.readAll(path: from + "/meta.json")),
                  let uid = meta["owner"]?.uint64Value, let owner = UInt32(exactly: uid) else {
                Log.error("job \(name) in \(flatJobsDirectory): its meta.json names no owner, so it cannot move to \(ownersDirectory); leaving it alone")
                continue
            }
            let to = jobFiles(JobKey(owner: owner, name: name)).directory
            do throws(SystemError) {
                try FileIO.makeDirectories(ownerDirectory(owner), mode: 0o700)
                try FileIO.rename(from, to: to)
                moved += 1
            } catch {
                Log.error("job \(name): cannot move it to \(to): \(error); leaving it alone")
            }
        }
        if moved > 0 {
            // The renames are durable once both directories are; a crash before leaves each job in one place or the other.
            try? FileIO.syncDirectory(flatJobsDirectory)
            try? FileIO.syncDirectory(ownersDirectory)
            Log.info("moved \(moved) job(s) from \(flatJobsDirectory) (one namespace) to \(ownersDirectory) (names per owner)")
        }
    }

    /// The layout of the state directory that this ltd reads and writes, recorded in `DIR/format` (the number and a
    /// newline): 1 is `owners/UID/NAME`. A directory without the file is new, or from ltd 0.1.0 (whose flat layout
    /// `migrateFlatLayout` moves), and gets it.
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
        do { try FileIO.makeDirectories(ownersDirectory, mode: 0o700) } catch { throw .system(error) }
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
    /// a renamed but empty spec), then the owner's directory and the owners' one. On failure, removes what it wrote.
    func create(job key: JobKey, spec: JobSpec, specFile: [UInt8]? = nil, owner: UInt32, created: String, checkpoint: JobCheckpoint,
                kind: JobKind = .native) throws(SystemError) {
        let files = jobFiles(key)
        let dir = files.directory
        try FileIO.makeDirectories(ownerDirectory(key.owner), mode: 0o700)
        guard mkdir(dir, 0o700) == 0 else { throw SystemError(operation: "mkdir", path: dir, code: errno) }
        do throws(SystemError) {
            try FileIO.writeAtomically(specFile ?? StateStore.specFile(spec), to: files.spec, directory: dir)
            var meta = JSONWriter(precision: .float64, capacity: 128)
            meta.beginObject()
            meta.field("job", key.name)
            meta.key("owner"); meta.integer(UInt64(owner))
            meta.field("created", created)
            if kind != .native { meta.field("kind", kind.rawValue) }
            meta.endObject()
            meta.newline()
            try FileIO.writeAtomically(meta.bytes, to: files.meta, directory: dir)
            try checkpoint.write(to: files)
            try FileIO.syncDirectory(ownerDirectory(key.owner))
            try FileIO.syncDirectory(ownersDirectory)
        } catch {
            try? FileIO.removeTree(dir)
            throw error
        }
    }

    /// Moves a deleted job's directory out of the way (one rename), so its name is free at once; the returned
    /// directory is then removed off the loop thread. Its name starts with a dot, which no job name does.
    func retire(job: JobKey) throws(SystemError) -> String {
        let from = jobFiles(job).directory
        let to = ownersDirectory + "/.deleted-\(job.owner)-" + job.name + "-\(getpid())-\(Clock.monotonicNanoseconds())"
        try FileIO.rename(from, to: to)
        return to
    }

    /// Retired directories a previous run did not finish removing.
    func retiredDirectories() -> [String] {
        [ownersDirectory, flatJobsDirectory].flatMap { directory in
            ((try? FileIO.list(directory)) ?? []).filter { $0.hasPrefix(".deleted-") }.map { directory + "/" + $0 }
        }
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

    /// Every job directory: each owner's (a uid's digits) valid job names.
    func jobKeys() throws(SystemError) -> [JobKey] {
        var keys: [JobKey] = []
        for entry in try FileIO.list(ownersDirectory) {
            guard let owner = UInt32(entry), String(owner) == entry else { continue }
            keys += try FileIO.list(ownerDirectory(owner)).filter { JobName.isValid($0) }.map { JobKey(owner: owner, name: $0) }
        }
        return keys
    }

    /// A job's `spec.json` (read again on demand for a finished job, whose spec is not kept in memory).
    func spec(job key: JobKey) throws(LoadError) -> JobSpec {
        let path = jobFiles(key).spec
        let json = try StateStore.json(path)
        do { return try JobSpec(storedJSON: json) } catch {
            throw .unreadable("\(path) is not a spec this ltd can run: \(error)")
        }
    }

    /// A job's `meta.json`: who owns it (who must be the owner it is kept under), when it was created, and its kind.
    func meta(job key: JobKey) throws(LoadError) -> (owner: UInt32, created: String, kind: JobKind) {
        let path = jobFiles(key).meta
        let meta = try StateStore.json(path)
        guard let uid = meta["owner"]?.uint64Value, uid <= UInt64(UInt32.max) else {
            throw .unreadable("\(path) has no owner uid")
        }
        guard UInt32(uid) == key.owner else {
            throw .unreadable("\(path) says uid \(uid) owns it, but it is kept under uid \(key.owner)")
        }
        guard let kind = JobKind(rawValue: meta["kind"]?.stringValue ?? "native") else {
            throw .unreadable("\(path) names an unknown kind of job")
        }
        return (UInt32(uid), meta["created"]?.stringValue ?? "", kind)
    }

    /// A state file's JSON; each failure names its file and why, so a job that cannot be restored is reported as such.
    private static func json(_ path: String) throws(LoadError) -> JSONValue {
        do { return try JSONParser.parse(try FileIO.readAll(path: path)) } catch {
            throw .unreadable("\(path): \(error)")
        }
    }

    /// What `--max-state-bytes` counts of a job: its spec and its log (`logBytes`, when its log is cut back to a
    /// checkpoint or its thread counts on from there; else the file's size). Given back when the job is deleted.
    func bytesInUse(of job: JobKey, logBytes: Int? = nil) -> Int {
        let files = jobFiles(job)
        return FileIO.size(files.spec) + (logBytes ?? FileIO.size(files.events))
    }

    func load(job key: JobKey) throws(LoadError) -> StoredJob {
        let name = key.name
        let files = jobFiles(key)
        let spec = try spec(job: key)
        let (owner, created, kind) = try meta(job: key)
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
