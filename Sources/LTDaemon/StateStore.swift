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

    func prepare() throws(SystemError) {
        try FileIO.makeDirectories(ownersDirectory, mode: 0o700)
    }

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
                guard rename(from, to) == 0 else { throw SystemError(operation: "rename", path: from, code: errno) }
                moved += 1
            } catch {
                Log.error("job \(name): cannot move it to \(to): \(error); leaving it alone")
            }
        }
        if moved > 0 {
            FileIO.syncDirectory(flatJobsDirectory)
            FileIO.syncDirectory(ownersDirectory)
            Log.info("moved \(moved) job(s) from \(flatJobsDirectory) (one namespace) to \(ownersDirectory) (names per owner)")
        }
    }

    /// The bytes of `spec.json` (pure; large specs have this done off the loop thread).
    static func specFile(_ spec: JobSpec) -> [UInt8] {
        var writer = JSONWriter(precision: .float64, capacity: 4096 + 24 * (spec.data.x.count + (spec.validation?.x.count ?? 0)) * 2)
        writer.value(spec.json)
        writer.newline()
        return writer.bytes
    }

    /// Records a new job: its directory, spec, meta and initial checkpoint. On failure, removes what it wrote.
    func create(job key: JobKey, spec: JobSpec, specFile: [UInt8]? = nil, owner: UInt32, created: String, checkpoint: JobCheckpoint,
                kind: JobKind = .native) throws(SystemError) {
        let files = jobFiles(key)
        let dir = files.directory
        try FileIO.makeDirectories(ownerDirectory(key.owner), mode: 0o700)
        guard mkdir(dir, 0o700) == 0 else { throw SystemError(operation: "mkdir", path: dir, code: errno) }
        do throws(SystemError) {
            try FileIO.writeAtomically(specFile ?? StateStore.specFile(spec), to: files.spec, directory: dir, sync: false)
            var meta = JSONWriter(precision: .float64, capacity: 128)
            meta.beginObject()
            meta.field("job", key.name)
            meta.key("owner"); meta.integer(UInt64(owner))
            meta.field("created", created)
            if kind != .native { meta.field("kind", kind.rawValue) }
            meta.endObject()
            meta.newline()
            try FileIO.writeAtomically(meta.bytes, to: files.meta, directory: dir, sync: false)
            let bytes: [UInt8]
            do { bytes = try checkpoint.encoded() } catch {
                throw SystemError(operation: "encode checkpoint for", path: dir, code: EINVAL)
            }
            try FileIO.writeAtomically(bytes, to: files.checkpoint, directory: dir)
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
        guard rename(from, to) == 0 else { throw SystemError(operation: "rename", path: from, code: errno) }
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
        let files = jobFiles(key)
        do {
            return try JobSpec(storedJSON: try JSONParser.parse(try FileIO.readAll(path: files.spec)))
        } catch {
            throw LoadError.unreadable("\(files.spec): \(error)")
        }
    }

    /// A job's `meta.json`: who owns it (who must be the owner it is kept under), when it was created, and its kind.
    func meta(job key: JobKey) throws(LoadError) -> (owner: UInt32, created: String, kind: JobKind) {
        let files = jobFiles(key)
        let meta: JSONValue
        do { meta = try JSONParser.parse(try FileIO.readAll(path: files.meta)) } catch {
            throw LoadError.unreadable("\(files.meta): \(error)")
        }
        guard let uid = meta["owner"]?.uint64Value, uid <= UInt64(UInt32.max) else {
            throw LoadError.unreadable("meta.json has no owner uid")
        }
        guard UInt32(uid) == key.owner else {
            throw LoadError.unreadable("meta.json says uid \(uid) owns it, but it is kept under uid \(key.owner)")
        }
        guard let kind = JobKind(rawValue: meta["kind"]?.stringValue ?? "native") else {
            throw LoadError.unreadable("meta.json names an unknown kind of job")
        }
        return (UInt32(uid), meta["created"]?.stringValue ?? "", kind)
    }

    func load(job key: JobKey) throws(LoadError) -> StoredJob {
        let name = key.name
        let files = jobFiles(key)
        let spec = try spec(job: key)
        let (owner, created, kind) = try meta(job: key)
        var checkpoint: JobCheckpoint? = nil
        if let bytes = try? FileIO.readAll(path: files.checkpoint) {
            do { checkpoint = try JobCheckpoint.decode(bytes) } catch {
                throw LoadError.unreadable("\(files.checkpoint): \(error)")
            }
        }
        return StoredJob(name: name, spec: spec, owner: owner, created: created, checkpoint: checkpoint, kind: kind)
    }
}
