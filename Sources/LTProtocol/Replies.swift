import LTEngine

/// A job as `status`, `list` and `started` describe it (docs/PROTOCOL.md, "The status object").
public struct JobStatus: Sendable, Equatable {
    public var job: String
    public var state: JobState
    public var owner: UInt32
    /// ISO-8601 UTC, e.g. "2026-11-29T08:40:00Z".
    public var created: String
    /// When the job ended (ISO-8601 UTC), once it is over; nil while it runs, and from a daemon before `prune`.
    public var ended: String?
    /// Optimizer steps taken (0 before the first).
    public var iteration: Int
    /// Epoch of the latest step (0 before the first).
    public var epoch: Int
    /// Step within that epoch (0 before the first).
    public var step: Int
    public var stepsPerEpoch: Int
    public var epochs: Int
    public var totalSteps: Int
    /// The last event's sequence number.
    public var seq: Int
    public var w: Double
    public var b: Double
    /// Metrics of the latest step; nil before it.
    public var loss: Double?
    public var rmse: Double?
    public var valLoss: Double?
    public var valRmse: Double?
    /// Why a job diverged or failed.
    public var message: String?
    /// Why a `damaged` job's directory could not be restored (nil for any other state).
    public var reason: String?
    public var precision: Precision
    /// native (trained by ltd) or external (published by a client such as the Keras bridge).
    public var kind: JobKind
    /// `OWNER/NAME` (docs/PROTOCOL.md, "Job names"); nil from a daemon before names per owner.
    public var fullName: String?

    public init(job: String, state: JobState, owner: UInt32, created: String, iteration: Int = 0, epoch: Int = 0,
                step: Int = 0, stepsPerEpoch: Int, epochs: Int, totalSteps: Int, seq: Int, w: Double, b: Double,
                loss: Double? = nil, rmse: Double? = nil, valLoss: Double? = nil, valRmse: Double? = nil,
                message: String? = nil, precision: Precision, kind: JobKind = .native, fullName: String? = nil,
                reason: String? = nil, ended: String? = nil) {
        self.job = job; self.state = state; self.owner = owner; self.created = created; self.iteration = iteration
        self.epoch = epoch; self.step = step; self.stepsPerEpoch = stepsPerEpoch; self.epochs = epochs
        self.totalSteps = totalSteps; self.seq = seq; self.w = w; self.b = b; self.loss = loss; self.rmse = rmse
        self.valLoss = valLoss; self.valRmse = valRmse; self.message = message; self.precision = precision
        self.kind = kind; self.fullName = fullName; self.reason = reason; self.ended = ended
    }

    /// iteration / total_steps, rounded to 4 decimals (1 for a job with no steps).
    public var progress: Double {
        guard totalSteps > 0 else { return 1 }
        return (Double(iteration) / Double(totalSteps) * 10_000).rounded() / 10_000
    }

    public var json: JSONValue {
        var w = JSONWriter(precision: precision, capacity: 384)
        write(to: &w)
        // Our own output always parses; the fallback keeps this total without a force-try.
        return (try? JSONParser.parse(w.bytes)) ?? .null
    }

    func write(to out: inout JSONWriter) {
        out.beginObject()
        out.field("job", job)
        if let fullName { out.field("full_name", fullName) }
        out.field("state", state.rawValue)
        out.field("kind", kind.rawValue)
        out.key("owner"); out.integer(UInt64(owner))
        out.field("created", created)
        if let ended { out.field("ended", ended) }
        out.field("iteration", iteration)
        out.field("epoch", epoch)
        out.field("step", step)
        out.field("steps_per_epoch", stepsPerEpoch)
        out.field("epochs", epochs)
        out.field("total_steps", totalSteps)
        out.key("progress"); out.number(progress, precision: .float64)
        out.field("seq", seq)
        out.field("precision", precision.rawValue)
        out.field("w", w)
        out.field("b", b)
        if let loss { out.field("loss", loss) }
        if let rmse { out.field("rmse", rmse) }
        if let valLoss { out.field("val_loss", valLoss) }
        if let valRmse { out.field("val_rmse", valRmse) }
        out.key("message")
        if let message { out.string(message) } else { out.null() }
        if let reason { out.field("reason", reason) }
        out.endObject()
    }

    public init(json: JSONValue) throws(JSONShapeError) {
        let r = JSONShapeReader(json)
        let stateText = try r.string("state")
        guard let state = JobState(rawValue: stateText) else {
            throw JSONShapeError(path: "state", reason: "unknown state \"\(stateText)\"")
        }
        let precisionText = try r.optionalString("precision") ?? "float32"
        guard let precision = Precision(rawValue: precisionText) else {
            throw JSONShapeError(path: "precision", reason: "unknown precision \"\(precisionText)\"")
        }
        let kindText = try r.optionalString("kind") ?? "native"
        guard let kind = JobKind(rawValue: kindText) else {
            throw JSONShapeError(path: "kind", reason: "unknown kind \"\(kindText)\"")
        }
        guard let owner = UInt32(exactly: try r.int("owner")) else {
            throw JSONShapeError(path: "owner", reason: "not a uid")
        }
        // A float32 job's numbers are the shortest float32 decimals: round them back to the exact float32 values.
        func exact(_ x: Double) -> Double { precision == .float32 ? Double(Float(x)) : x }
        self.init(job: try r.string("job"), state: state, owner: owner, created: try r.string("created"),
                  iteration: try r.int("iteration"), epoch: try r.int("epoch"), step: try r.int("step"),
                  stepsPerEpoch: try r.int("steps_per_epoch"), epochs: try r.int("epochs"),
                  totalSteps: try r.int("total_steps"), seq: try r.int("seq"), w: exact(try r.double("w")),
                  b: exact(try r.double("b")), loss: try r.optionalDouble("loss").map(exact),
                  rmse: try r.optionalDouble("rmse").map(exact), valLoss: try r.optionalDouble("val_loss").map(exact),
                  valRmse: try r.optionalDouble("val_rmse").map(exact), message: try r.optionalString("message"),
                  precision: precision, kind: kind, fullName: try r.optionalString("full_name"),
                  reason: try r.optionalString("reason"), ended: try r.optionalString("ended"))
    }
}

/// Reply lines, each `\n`-terminated. `id` is the request's id, echoed when it had one.
public enum Reply {
    private static func begin(_ type: StaticString, id: JSONValue?, capacity: Int = 256) -> JSONWriter {
        var w = JSONWriter(precision: .float64, capacity: capacity)
        w.beginObject()
        w.key("type"); w.rawString(type)
        if let id { w.key("id"); w.value(id) }
        return w
    }

    private static func finish(_ w: inout JSONWriter) -> [UInt8] {
        w.endObject()
        w.newline()
        return w.bytes
    }

    /// `pid`, `uid`, `gid` and `user` are the daemon's own (as in protocol 1 from the start); `peer` is the caller
    /// as the daemon sees it through SO_PEERCRED, the identity that owns its jobs; `capabilities` lists what the
    /// daemon offers beyond protocol 1 as first released.
    public static func hello(id: JSONValue?, daemon: ProcessIdentity, peer: ProcessIdentity) -> [UInt8] {
        var w = begin("hello", id: id)
        w.field("protocol", DefaultPaths.protocolVersion)
        w.field("version", DefaultPaths.daemonVersion)
        daemon.writeFields(to: &w)
        w.key("peer"); w.beginObject(); peer.writeFields(to: &w); w.endObject()
        w.key("capabilities"); w.beginArray()
        for capability in Capability.allCases { w.string(capability.rawValue) }
        w.endArray()
        return finish(&w)
    }

    public static func started(id: JSONValue?, job: String, status: JobStatus) -> [UInt8] {
        var w = begin("started", id: id)
        w.field("job", job)
        w.key("status"); status.write(to: &w)
        return finish(&w)
    }

    public static func jobs(id: JSONValue?, _ jobs: [JobStatus]) -> [UInt8] {
        var w = begin("jobs", id: id, capacity: 64 + 384 * jobs.count)
        w.key("jobs"); w.beginArray()
        for j in jobs { j.write(to: &w) }
        w.endArray()
        return finish(&w)
    }

    public static func status(id: JSONValue?, _ status: JobStatus) -> [UInt8] {
        var w = begin("status", id: id)
        w.key("status"); status.write(to: &w)
        return finish(&w)
    }

    /// `{"type":"ok","op":…,"job":…,"state":…}`; `job` and `state` are left out when nil (unsubscribe).
    public static func ok(id: JSONValue?, op: String, job: String?, state: JobState?) -> [UInt8] {
        var w = begin("ok", id: id)
        w.field("op", op)
        if let job { w.field("job", job) }
        if let state { w.field("state", state.rawValue) }
        return finish(&w)
    }

    /// An external job's event was accepted; `seq` is that of its last line.
    public static func published(id: JSONValue?, job: String, seq: Int) -> [UInt8] {
        var w = begin("published", id: id)
        w.field("job", job)
        w.field("seq", seq)
        return finish(&w)
    }

    /// A job `prune` removed (or, in a dry run, would remove).
    public struct PrunedJob: Sendable, Equatable {
        public var job: String
        public var fullName: String
        public var owner: UInt32
        public var state: JobState
        public var ended: String
        public init(job: String, fullName: String, owner: UInt32, state: JobState, ended: String) {
            self.job = job; self.fullName = fullName; self.owner = owner; self.state = state; self.ended = ended
        }
    }

    /// `prune`'s answer: the jobs removed (or that would be, with `dry_run`), and those whose files could not be
    /// removed, each with the reason.
    public static func pruned(id: JSONValue?, olderThan: Int, dryRun: Bool, removed: [PrunedJob],
                              failed: [(job: PrunedJob, error: String)]) -> [UInt8] {
        var w = begin("pruned", id: id, capacity: 128 + 160 * (removed.count + failed.count))
        w.field("older_than_seconds", olderThan)
        w.field("dry_run", dryRun)
        func write(_ job: PrunedJob, error: String?) {
            w.beginObject()
            w.field("job", job.job)
            w.field("full_name", job.fullName)
            w.key("owner"); w.integer(UInt64(job.owner))
            w.field("state", job.state.rawValue)
            w.field("ended", job.ended)
            if let error { w.field("error", error) }
            w.endObject()
        }
        w.key("jobs"); w.beginArray()
        for job in removed { write(job, error: nil) }
        w.endArray()
        w.key("failed"); w.beginArray()
        for entry in failed { write(entry.job, error: entry.error) }
        w.endArray()
        return finish(&w)
    }

    /// `last_seq` is the job's last event so far; `complete` is true when the job is over and `from` is past it,
    /// so no events follow.
    public static func subscribed(id: JSONValue?, job: String, from: Int, lastSeq: Int, state: JobState, complete: Bool) -> [UInt8] {
        var w = begin("subscribed", id: id)
        w.field("job", job)
        w.field("from", from)
        w.field("last_seq", lastSeq)
        w.field("state", state.rawValue)
        w.field("complete", complete)
        return finish(&w)
    }

    /// `{"type":"stats",…}`: the daemon's figures (docs/PROTOCOL.md, "stats"), built by the daemon.
    public static func stats(id: JSONValue?, _ fields: [(key: String, value: JSONValue)]) -> [UInt8] {
        var w = begin("stats", id: id, capacity: 2048)
        for field in fields { w.key(field.key); w.value(field.value) }
        return finish(&w)
    }
}
