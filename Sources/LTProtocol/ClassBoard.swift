/// The class board's ranking (`ltctl board`, `ltctl list --sort`): a pure function of the jobs' status objects, so
/// it is tested without a daemon.
///
/// By a metric (`val_rmse`, `rmse`), lowest first, the jobs stand in this order:
/// finished runs, ranked 1, 2, … (equal values share a rank, as in sport: 1, 1, 3), then finished runs without the
/// metric (no validation data); runs still going (running or paused, by their latest value); cancelled runs;
/// diverged and failed runs; damaged jobs. Within each group a job without the metric (no step yet, or a
/// non-finite value) comes after those with it, and equal ones go by full name.
/// By `iteration` (most first), `name`, `owner` or `state`, jobs are only sorted, not ranked.
public enum ClassBoard {
    public enum Order: String, CaseIterable, Sendable {
        case valRMSE = "val_rmse", rmse, iteration, name, owner, state
    }

    /// Where a job stands on the board.
    public enum Standing: String, Sendable, Equatable, Comparable {
        case finished, unmeasured, going, cancelled, failed, damaged

        public static func < (a: Standing, b: Standing) -> Bool { a.position < b.position }
        private var position: Int { [.finished, .unmeasured, .going, .cancelled, .failed, .damaged].firstIndex(of: self) ?? 0 }

        /// `measured`: false when the board ranks by a metric `status` has no finite value of.
        init(_ status: JobStatus, measured: Bool) {
            switch status.state {
            case .finished: self = measured ? .finished : .unmeasured
            case .running, .paused: self = .going
            case .cancelled: self = .cancelled
            case .diverged, .failed: self = .failed
            case .damaged: self = .damaged
            }
        }
    }

    public struct Row: Sendable, Equatable {
        /// The place among finished runs by the metric; nil for every other job, and for the orders that only sort.
        public var rank: Int?
        public var standing: Standing
        public var status: JobStatus
    }

    /// The metric `order` ranks by, when it is one and `status` has a finite value of it.
    public static func metric(_ status: JobStatus, _ order: Order) -> Double? {
        let value: Double?
        switch order {
        case .valRMSE: value = status.valRmse
        case .rmse: value = status.rmse
        default: return nil
        }
        return value.flatMap { $0.isFinite ? $0 : nil }
    }

    /// The board's rows for `jobs`, in `order`.
    public static func rank(_ jobs: [JobStatus], by order: Order) -> [Row] {
        let name = { (s: JobStatus) in s.fullName ?? s.job }
        let owner = { (s: JobStatus) in name(s).split(separator: "/").first.map(String.init) ?? String(s.owner) }
        let ranks = order == .valRMSE || order == .rmse
        var rows = jobs.map { Row(rank: nil, standing: Standing($0, measured: !ranks || metric($0, order) != nil), status: $0) }
        rows.sort { a, b in
            let (x, y) = (a.status, b.status)
            switch order {
            case .valRMSE, .rmse:
                if a.standing != b.standing { return a.standing < b.standing }
                switch (metric(x, order), metric(y, order)) {
                case let (p?, q?) where p != q: return p < q
                case (.some, nil): return true
                case (nil, .some): return false
                default: break
                }
            case .iteration:
                if x.iteration != y.iteration { return x.iteration > y.iteration }
            case .owner:
                if owner(x) != owner(y) { return owner(x) < owner(y) }
            case .state:
                let states = JobState.allCases
                let (p, q) = (states.firstIndex(of: x.state) ?? 0, states.firstIndex(of: y.state) ?? 0)
                if p != q { return p < q }
            case .name:
                if x.job != y.job { return x.job < y.job }
            }
            return name(x) < name(y)
        }
        guard ranks else { return rows }
        var previous: Double?
        var place = 0
        for i in rows.indices where rows[i].standing == .finished {
            let value = metric(rows[i].status, order)
            place = value == previous ? place : i + 1
            previous = value
            rows[i].rank = place
        }
        return rows
    }
}
