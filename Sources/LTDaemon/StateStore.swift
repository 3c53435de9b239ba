#if canImport(Glibc)
import Glibc
#endif
import LTEngine
import LTProtocol

/// The daemon's state directory:
///
///     DIR/jobs/NAME/spec.json         the resolved spec (what `start` carried, seeds filled in)
///     DIR/jobs/NAME/meta.json         {"job":…, "owner": uid, "created": RFC 3339}
///     DIR/jobs/NAME/events.ndjson     the append-only event log, one line per event, seq 1, 2, 3, …
///     DIR/jobs/NAME/checkpoint.json   the latest JobCheckpoint
///
/// Names are validated job names, so paths never leave the directory. Nothing here opens a client-named path.
struct StateStore {
    let root: String
    var jobsDirectory: String { root + "/jobs" }
    func directory(of job: String) -> String { jobsDirectory + "/" + job }

    func prepare() throws(SystemError) {
        try FileIO.makeDirectories(jobsDirectory, mode: 0o700)
    }

    /// Records a new job: its directory, spec, meta and initial checkpoint. On failure, removes what it wrote.
    /// The bytes of `spec.json` (pure; large specs have this done off the loop thread).
    static func specFile(_ spec: JobSpec) -> [UInt8] {
        var writer = JSONWriter(precision: .float64, capacity: 4096 + 24 * (spec.data.x.count + (spec.validation?.x.count ?? 0)) * 2)
        writer.value(spec.json)
        writer.newline()
        return writer.bytes
    }

    func create(job: String, spec: JobSpec, specFile: [UInt8]? = nil, owner: UInt32, created: String, checkpoint: JobCheckpoint) throws(SystemError) {
        let dir = directory(of: job)
        guard mkdir(dir, 0o700) == 0 else { throw SystemError(operation: "mkdir", path: dir, code: errno) }
        do throws(SystemError) {
            // Each file fsynced like the checkpoint: a crash must not leave a renamed but empty spec or meta.
            try FileIO.writeAtomically(specFile ?? StateStore.specFile(spec), to: dir + "/spec.json", directory: dir)
            var meta = JSONWriter(precision: .float64, capacity: 128)
            meta.beginObject()
            meta.field("job", job)
            meta.key("owner"); meta.integer(UInt64(owner))
            meta.field("created", created)
            meta.endObject()
            meta.newline()
            try FileIO.writeAtomically(meta.bytes, to: dir + "/meta.json", directory: dir)
            let bytes: [UInt8]
            do { bytes = try checkpoint.encoded() } catch {
                throw SystemError(operation: "encode checkpoint for", path: dir, code: EINVAL)
            }
            try FileIO.writeAtomically(bytes, to: dir + "/checkpoint.json", directory: dir)
        } catch {
            try? FileIO.removeTree(dir)
            throw error
        }
    }

    /// What a job directory holds, as far as it can be read.
    struct StoredJob {
        var name: String
        var spec: JobSpec
        var owner: UInt32
        var created: String
        var checkpoint: JobCheckpoint?
    }

    enum LoadError: Error, CustomStringConvertible {
        case unreadable(String)
        var description: String { if case .unreadable(let why) = self { return why }; return "" }
    }

    func jobNames() throws(SystemError) -> [String] {
        try FileIO.list(jobsDirectory).filter { JobName.isValid($0) }
    }

    func load(job name: String) throws(LoadError) -> StoredJob {
        let dir = directory(of: name)
        let spec: JobSpec
        let owner: UInt32
        let created: String
        do {
            let specValue = try JSONParser.parse(try FileIO.readAll(path: dir + "/spec.json"))
            spec = try JobSpec(storedJSON: specValue)
            let meta = try JSONParser.parse(try FileIO.readAll(path: dir + "/meta.json"))
            guard let uid = meta["owner"]?.uint64Value, uid <= UInt64(UInt32.max) else {
                throw LoadError.unreadable("meta.json has no owner uid")
            }
            owner = UInt32(uid)
            created = meta["created"]?.stringValue ?? ""
        } catch let error as LoadError {
            throw error
        } catch {
            throw LoadError.unreadable("\(dir): \(error)")
        }
        var checkpoint: JobCheckpoint? = nil
        let checkpointPath = dir + "/checkpoint.json"
        var bytes: [UInt8]? = nil
        do { bytes = try FileIO.readAll(path: checkpointPath) } catch {
            // Only a checkpoint that does not exist means "none yet": treating an unreadable one so would cut the
            // log back to nothing.
            guard error.code == ENOENT else { throw LoadError.unreadable("\(checkpointPath): \(error)") }
        }
        if let bytes {
            do { checkpoint = try JobCheckpoint.decode(bytes) } catch {
                throw LoadError.unreadable("\(checkpointPath): \(error)")
            }
        }
        if let c = checkpoint {
            guard c.version <= JobCheckpoint.currentVersion else {
                throw LoadError.unreadable("\(checkpointPath) has format version \(c.version), newer than this ltd reads (\(JobCheckpoint.currentVersion)); run the ltd that wrote it, or a newer one")
            }
            // Numbers from disk are bounded before use: every event takes at least one byte of the log.
            var info = stat()
            let logBytes = stat(dir + "/events.ndjson", &info) == 0 ? Int(info.st_size) : 0
            guard c.seq >= 0, c.offset >= 0, c.seq <= c.offset, c.offset <= logBytes else {
                throw LoadError.unreadable("\(checkpointPath) claims \(c.seq) events in \(c.offset) bytes, but the log holds \(logBytes) bytes")
            }
        }
        return StoredJob(name: name, spec: spec, owner: owner, created: created, checkpoint: checkpoint)
    }

    /// Cuts a job's log back to the end of event `seq`, which the checkpoint says ends at byte `offset`. Checks
    /// that claim (the byte before `offset` ends a line whose seq is `seq`) and otherwise finds the right offset by
    /// scanning. Returns the offset the log now ends at, or nil when the log holds fewer than `seq` events.
    func truncateLog(path: String, toSeq seq: Int, offset: Int) -> Int? {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { return nil }
        let size = Int(info.st_size)
        var target: Int? = nil
        if seq == 0 {
            target = 0
        } else if offset <= size, offset > 0, lastLineSeq(fd: fd, endingAt: offset) == seq {
            target = offset
        } else {
            target = scanForEnd(fd: fd, seq: seq, size: size)
        }
        guard let target else { return nil }
        if target < size {
            guard ftruncate(fd, off_t(target)) == 0 else { return nil }
            _ = fsync(fd)
        }
        return target
    }

    /// The seq of the line that ends (with its `\n`) exactly at `end`.
    private func lastLineSeq(fd: Int32, endingAt end: Int) -> Int? {
        let window = min(end, 1 << 20)
        var buffer = [UInt8](repeating: 0, count: window)
        let got = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, window, off_t(end - window)) }
        guard got == window, buffer.last == 0x0A else { return nil }
        var start = window - 1
        while start > 0, buffer[start - 1] != 0x0A { start -= 1 }
        guard start > 0 || window == end else { return nil }
        return buffer.withUnsafeBytes { raw in
            EventLineScan.integerValue(of: "\"seq\":", in: UnsafeRawBufferPointer(rebasing: raw[start..<window]))
        }
    }

    /// The offset just after the `seq`-th line, by counting lines from the start.
    private func scanForEnd(fd: Int32, seq: Int, size: Int) -> Int? {
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var position = 0
        var lines = 0
        while position < size {
            let got = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, off_t(position)) }
            guard got > 0 else { return nil }
            for i in 0..<got where buffer[i] == 0x0A {
                lines += 1
                if lines == seq { return position + i + 1 }
            }
            position += got
        }
        return nil
    }
}
