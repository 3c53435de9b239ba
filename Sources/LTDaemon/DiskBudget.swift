#if canImport(Glibc)
import Glibc
#endif
import LTEngine
import Synchronization

/// The daemon's disk limits: `ltd --max-log-bytes`, `--max-state-bytes`, `--max-jobs-per-user`.
public struct DiskLimits: Sendable, Equatable {
    /// Most bytes of log one job may write; `start` refuses a job that cannot fit, and a job that reaches it fails.
    public var maxLogBytes: Int
    /// Most bytes of logs and specs of all jobs together; `start` refuses a job that would pass it, and a job whose
    /// log would pass it fails.
    public var maxStateBytes: Int
    /// Most jobs one uid may keep (running or finished).
    public var maxJobsPerUser: Int

    public static let defaultMaxLogBytes = 1 << 30
    public static let defaultMaxStateBytes = 10 << 30
    public static let defaultMaxJobsPerUser = 100

    /// What `start` assumes a job writes at the least, to refuse one that cannot fit: every step event takes at
    /// least this many bytes (its fixed keys alone take about 250; real ones take 300 to 700)...
    public static let leastBytesPerStep = 200
    /// ...and every data row at least this many, once in the start event and once in `spec.json` (x and y, each at
    /// least a digit and a comma).
    public static let leastBytesPerRow = 4

    public init(maxLogBytes: Int = defaultMaxLogBytes, maxStateBytes: Int = defaultMaxStateBytes,
                maxJobsPerUser: Int = defaultMaxJobsPerUser) {
        self.maxLogBytes = maxLogBytes
        self.maxStateBytes = maxStateBytes
        self.maxJobsPerUser = maxJobsPerUser
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

    private static func saturating(_ a: Int, plus b: Int) -> Int {
        let (sum, overflow) = a.addingReportingOverflow(b)
        return overflow ? Int.max : sum
    }
}

/// The bytes of logs and specs in the state directory, counted against `--max-state-bytes`; shared by the loop
/// (new jobs, deletes) and the job threads (appends). Counted from the files when ltd starts, then as they change.
final class DiskBudget: Sendable {
    let limits: DiskLimits
    private let used = Atomic<Int>(0)
    /// `StateStore.reserveFile`, while it holds room for failing jobs to record their end (see `freeReserve`).
    private let reservePath: String?
    private let reserveFreed = Atomic<Bool>(false)

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

    var usedBytes: Int { used.load(ordering: .relaxed) }

    /// Why a log at `offset` may not grow by `bytes`, or nil after counting them: the job's own limit, then the
    /// state's. A caller whose write then fails gives them back.
    func take(_ bytes: Int, logAt offset: Int) -> String? {
        let (end, overflow) = offset.addingReportingOverflow(bytes)
        if overflow || end > limits.maxLogBytes {
            return "its log would pass this daemon's limit of \(limits.maxLogBytes) bytes per job (ltd --max-log-bytes)"
        }
        var current = used.load(ordering: .relaxed)
        while true {
            let (next, overflow) = current.addingReportingOverflow(bytes)
            if overflow || next > limits.maxStateBytes {
                return "the jobs' logs and specs would pass this daemon's limit of \(limits.maxStateBytes) bytes in all (ltd --max-state-bytes)"
            }
            let (exchanged, original) = used.compareExchange(expected: current, desired: next, ordering: .relaxed)
            if exchanged { return nil }
            current = original
        }
    }

    /// Counts bytes already on disk (a new job's spec, the files found at start).
    func add(_ bytes: Int) { used.wrappingAdd(max(bytes, 0), ordering: .relaxed) }

    /// Gives back bytes taken (a failed write) or freed (a deleted job).
    func release(_ bytes: Int) {
        var current = used.load(ordering: .relaxed)
        while true {
            let (exchanged, original) = used.compareExchange(expected: current, desired: max(current - max(bytes, 0), 0), ordering: .relaxed)
            if exchanged { return }
            current = original
        }
    }
}
