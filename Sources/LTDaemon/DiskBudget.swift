#if canImport(Glibc)
import Glibc
#endif
import LTEngine
import LTProtocol
import Synchronization

/// The daemon's disk limits and per-user quotas: `ltd --max-log-bytes`, `--max-state-bytes`, `--max-jobs-per-user`,
/// `--max-running-per-user`, `--max-bytes-per-user`.
public struct DiskLimits: Sendable, Equatable {
    /// Most bytes of log one job may write; `start` refuses a job that cannot fit, and a job that reaches it fails.
    public var maxLogBytes: Int
    /// Most bytes of logs and specs of all jobs together; `start` refuses a job that would pass it, and a job whose
    /// log would pass it fails.
    public var maxStateBytes: Int
    /// Most jobs one uid may keep (running or finished).
    public var maxJobsPerUser: Int
    /// Most unfinished jobs (running or paused, and external ones still fed) one uid may have at once.
    public var maxRunningPerUser: Int
    /// Most bytes of logs and specs one uid's jobs may take together: counted as `maxStateBytes` is, per owner.
    public var maxBytesPerUser: Int

    public static let defaultMaxLogBytes = 1 << 30
    public static let defaultMaxStateBytes = 10 << 30
    public static let defaultMaxJobsPerUser = 100
    public static let defaultMaxRunningPerUser = 4
    public static let defaultMaxBytesPerUser = 2 << 30

    /// What `start` assumes a job writes at the least, to refuse one that cannot fit: every step event takes at
    /// least this many bytes (its fixed keys alone take about 250; real ones take 300 to 700)...
    public static let leastBytesPerStep = 200
    /// ...and every data row at least this many, once in the start event and once in `spec.json` (x and y, each at
    /// least a digit and a comma).
    public static let leastBytesPerRow = 4

    public init(maxLogBytes: Int = defaultMaxLogBytes, maxStateBytes: Int = defaultMaxStateBytes,
                maxJobsPerUser: Int = defaultMaxJobsPerUser, maxRunningPerUser: Int = defaultMaxRunningPerUser,
                maxBytesPerUser: Int = defaultMaxBytesPerUser) {
        self.maxLogBytes = maxLogBytes
        self.maxStateBytes = maxStateBytes
        self.maxJobsPerUser = maxJobsPerUser
        self.maxRunningPerUser = maxRunningPerUser
        self.maxBytesPerUser = maxBytesPerUser
    }

    /// The fewest bytes a job of `spec` taking `totalSteps` steps writes: (log, log and spec file). Saturates at
    /// Int.max instead of overflowing, whatever the client's numbers.
    static func leastBytes(of spec: JobSpec, totalSteps: Int) -> (log: Int, state: Int) {
        let rows = saturating(spec.data.x.count, plus: spec.validation?.x.count ?? 0)
        let rowBytes = saturating(rows, times: leastBytesPerRow)
        let log = saturating(saturating(totalSteps, times: leastBytesPerStep), plus: rowBytes)
        return (log, saturating(log, plus: rowBytes))
    }

    private static func saturating(_ a: Int, times b: Int) -> Int {
        let (product, overflow) = a.multipliedReportingOverflow(by: b)
        return overflow ? Int.max : product
    }

    static func saturating(_ a: Int, plus b: Int) -> Int {
        let (sum, overflow) = a.addingReportingOverflow(b)
        return overflow ? Int.max : sum
    }
}

/// The bytes of logs and specs in the state directory, in all (against `--max-state-bytes`) and per owner (against
/// `--max-bytes-per-user`); shared by the loop (new jobs, deletes) and the job threads (appends). Counted from the files
/// when ltd starts, then as they change.
final class DiskBudget: Sendable {
    let limits: DiskLimits
    private let usage = Mutex(Usage())
    /// `StateStore.reserveFile`, while it holds room for failing jobs to record their end (see `freeReserve`).
    private let reservePath: String?
    private let reserveFreed = Atomic<Bool>(false)

    struct Usage: Sendable {
        var total = 0
        var byOwner: [UInt32: Int] = [:]
    }

    init(limits: DiskLimits, reservePath: String? = nil) {
        self.limits = limits
        self.reservePath = reservePath
    }

    /// A write to the state directory failed: frees the reserve (once), so that the jobs that now fail can still
    /// write their final events and checkpoint on a full disk. ltd makes a new reserve at its next start.
    func freeReserve() {
        guard let reservePath, !reserveFreed.exchange(true, ordering: .relaxed) else { return }
        if unlink(reservePath) == 0 {
            Log.warning("a write to the state directory failed: freed the reserve \(reservePath) (\(StateStore.reserveBytes) bytes) so that failing jobs can record their end; free some space, then restart ltd")
        }
    }

    var usedBytes: Int { usage.withLock { $0.total } }
    func usedBytes(of owner: UInt32) -> Int { usage.withLock { $0.byOwner[owner, default: 0] } }
    /// Every owner's bytes (for `stats`).
    var usedByOwner: [UInt32: Int] { usage.withLock { $0.byOwner } }

    /// Why a log of `owner`'s at `offset` may not grow by `bytes`, or nil after counting them: the job's own limit,
    /// then the owner's quota, then the state's. A caller whose write then fails gives them back.
    func take(_ bytes: Int, logAt offset: Int, owner: UInt32) -> String? {
        let (end, overflow) = offset.addingReportingOverflow(bytes)
        if overflow || end > limits.maxLogBytes {
            return "its log would pass this daemon's limit of \(limits.maxLogBytes) bytes per job (ltd --max-log-bytes)"
        }
        return usage.withLock { usage -> String? in
            let mine = usage.byOwner[owner, default: 0]
            let (nextMine, overflowMine) = mine.addingReportingOverflow(bytes)
            if overflowMine || nextMine > limits.maxBytesPerUser {
                return "its owner's jobs would pass this daemon's quota of \(limits.maxBytesPerUser) bytes of logs and specs per user (ltd --max-bytes-per-user; they take \(mine))"
            }
            let (next, overflow) = usage.total.addingReportingOverflow(bytes)
            if overflow || next > limits.maxStateBytes {
                return "the jobs' logs and specs would pass this daemon's limit of \(limits.maxStateBytes) bytes in all (ltd --max-state-bytes)"
            }
            usage.total = next
            usage.byOwner[owner] = nextMine
            return nil
        }
    }

    /// Counts bytes of `owner`'s already on disk (a new job's spec, the files found at start, final events).
    func add(_ bytes: Int, owner: UInt32) {
        let bytes = max(bytes, 0)
        usage.withLock { usage in
            usage.total = DiskLimits.saturating(usage.total, plus: bytes)
            usage.byOwner[owner] = DiskLimits.saturating(usage.byOwner[owner, default: 0], plus: bytes)
        }
    }

    /// Gives back bytes of `owner`'s taken (a failed write) or freed (a deleted job).
    func release(_ bytes: Int, owner: UInt32) {
        let bytes = max(bytes, 0)
        usage.withLock { usage in
            usage.total = max(usage.total - bytes, 0)
            let mine = max(usage.byOwner[owner, default: 0] - bytes, 0)
            usage.byOwner[owner] = mine > 0 ? mine : nil
        }
    }
}

// MARK: Refusing a new job

extension Server {
    /// Why the job `key` cannot be recorded, if so: its owner already has a job by that name, or a job limit or quota
    /// is reached (the daemon's, the owner's jobs kept, the owner's unfinished jobs). Jobs being recorded count.
    func refusalToRecord(_ key: JobKey, id: JSONValue?) -> ProtocolError? {
        if jobs.isTaken(key) {
            return ProtocolError(.jobExists, "you already have a job named \"\(key.name)\"; pick another name, or delete it first (ltctl delete \(key.name))", id: id)
        }
        guard jobs.count < configuration.maxJobs else {
            return ProtocolError(.tooManyJobs, "this daemon already keeps \(jobs.count) jobs, its limit (ltd --max-jobs \(configuration.maxJobs)); delete finished ones with ltctl delete NAME", id: id)
        }
        let limits = configuration.limits
        let owned = jobs.count(ownedBy: key.owner)
        guard owned < limits.maxJobsPerUser else {
            return ProtocolError(.tooManyJobs, "you already keep \(owned) jobs, the most this daemon allows one user (ltd --max-jobs-per-user \(limits.maxJobsPerUser)); delete finished ones with ltctl delete NAME", id: id)
        }
        let unfinished = jobs.unfinishedCount(ownedBy: key.owner)
        guard unfinished < limits.maxRunningPerUser else {
            return ProtocolError(.tooManyJobs, "you have \(unfinished) jobs running (or paused), the most this daemon allows one user (ltd --max-running-per-user \(limits.maxRunningPerUser)); wait for one to finish or cancel one: ltctl cancel NAME", id: id)
        }
        return nil
    }

    /// Why a job of `owner`'s of `spec` taking `totalSteps` steps cannot fit in the disk limits, if it cannot: counted
    /// at the least it writes (`DiskLimits.leastBytes`), so only a job that can never fit is refused.
    func diskRefusal(_ spec: JobSpec, totalSteps: Int, owner: UInt32, id: JSONValue?) -> ProtocolError? {
        let limits = configuration.limits
        let least = DiskLimits.leastBytes(of: spec, totalSteps: totalSteps)
        let how = "at least \(DiskLimits.leastBytesPerStep) bytes per step and \(DiskLimits.leastBytesPerRow) per data row"
        guard least.log <= limits.maxLogBytes else {
            return ProtocolError(.diskLimit, "this job takes \(totalSteps) steps on \(spec.data.x.count) rows, so its log needs at least \(least.log) bytes (\(how)); this daemon allows \(limits.maxLogBytes) bytes of log per job (ltd --max-log-bytes). Use fewer epochs, a larger batch_size or less data", field: "epochs", id: id)
        }
        let mine = jobs.budget.usedBytes(of: owner)
        guard least.state <= limits.maxBytesPerUser - min(mine, limits.maxBytesPerUser) else {
            return ProtocolError(.diskLimit, "your jobs' logs and specs take \(mine) bytes and this job needs at least \(least.state) more (\(how)), past this daemon's quota of \(limits.maxBytesPerUser) bytes per user (ltd --max-bytes-per-user); delete finished jobs with ltctl delete NAME, or use fewer epochs", field: "epochs", id: id)
        }
        let used = jobs.budget.usedBytes
        guard least.state <= limits.maxStateBytes - min(used, limits.maxStateBytes) else {
            return ProtocolError(.diskLimit, "the jobs' logs and specs take \(used) bytes and this job needs at least \(least.state) more (\(how)), past this daemon's limit of \(limits.maxStateBytes) bytes in all (ltd --max-state-bytes); delete finished jobs with ltctl delete NAME", field: "epochs", id: id)
        }
        return nil
    }
}

extension JobTable {
    /// `uid`'s jobs that are not over (running, paused, or fed from outside), counting those being recorded
    /// (`--max-running-per-user`).
    func unfinishedCount(ownedBy uid: UInt32) -> Int {
        all.count { $0.record.owner == uid && !$0.isOver } + reservedCount(ownedBy: uid)
    }
}
