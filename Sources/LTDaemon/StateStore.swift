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

    func prepare() throws(SystemError) {
        try FileIO.makeDirectories(jobsDirectory, mode: 0o700)
    }

    /// The bytes of `spec.json` (pure; large specs have this done off the loop thread).
    static func specFile(_ spec: JobSpec) -> [UInt8] {
        var writer = JSONWriter(precision: .float64, capacity: 4096 + 24 * (spec.data.x.count + (spec.validation?.x.count ?? 0)) * 2)
        writer.value(spec.json)
        writer.newline()
        return writer.bytes
    }

    /// Records a new job: its directory, spec, meta and initial checkpoint. On failure, removes what it wrote.
    func create(job: String, spec: JobSpec, specFile: [UInt8]? = nil, owner: UInt32, created: String, checkpoint: JobCheckpoint,
                kind: JobKind = .native) throws(SystemError) {
        let files = jobFiles(job)
        let dir = files.directory
        guard mkdir(dir, 0o700) == 0 else { throw SystemError(operation: "mkdir", path: dir, code: errno) }
        do throws(SystemError) {
            try FileIO.writeAtomically(specFile ?? StateStore.specFile(spec), to: files.spec, directory: dir, sync: false)
            var meta = JSONWriter(precision: .float64, capacity: 128)
            meta.beginObject()
            meta.field("job", job)
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
    func retire(job: String) throws(SystemError) -> String {
        let from = jobFiles(job).directory
        let to = jobsDirectory + "/.deleted-" + job + "-\(getpid())-\(Clock.monotonicNanoseconds())"
        guard rename(from, to) == 0 else { throw SystemError(operation: "rename", path: from, code: errno) }
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

    func jobNames() throws(SystemError) -> [String] {
        try FileIO.list(jobsDirectory).filter { JobName.isValid($0) }
    }

    /// A job's `spec.json` (read again on demand for a finished job, whose spec is not kept in memory).
    func spec(job name: String) throws(LoadError) -> JobSpec {
        let files = jobFiles(name)
        do {
            return try JobSpec(storedJSON: try JSONParser.parse(try FileIO.readAll(path: files.spec)))
        } catch {
            throw LoadError.unreadable("\(files.spec): \(error)")
        }
    }

    /// A job's `meta.json`: who owns it, when it was created, and its kind.
    func meta(job name: String) throws(LoadError) -> (owner: UInt32, created: String, kind: JobKind) {
        let files = jobFiles(name)
        let meta: JSONValue
        do { meta = try JSONParser.parse(try FileIO.readAll(path: files.meta)) } catch {
            throw LoadError.unreadable("\(files.meta): \(error)")
        }
        guard let uid = meta["owner"]?.uint64Value, uid <= UInt64(UInt32.max) else {
            throw LoadError.unreadable("meta.json has no owner uid")
        }
        guard let kind = JobKind(rawValue: meta["kind"]?.stringValue ?? "native") else {
            throw LoadError.unreadable("meta.json names an unknown kind of job")
        }
        return (UInt32(uid), meta["created"]?.stringValue ?? "", kind)
    }

    func load(job name: String) throws(LoadError) -> StoredJob {
        let files = jobFiles(name)
        let spec = try spec(job: name)
        let (owner, created, kind) = try meta(job: name)
        var checkpoint: JobCheckpoint? = nil
        if let bytes = try? FileIO.readAll(path: files.checkpoint) {
            do { checkpoint = try JobCheckpoint.decode(bytes) } catch {
                throw LoadError.unreadable("\(files.checkpoint): \(error)")
            }
        }
        return StoredJob(name: name, spec: spec, owner: owner, created: created, checkpoint: checkpoint, kind: kind)
    }
}
