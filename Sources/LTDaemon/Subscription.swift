import LTProtocol

/// One connection's subscription to a job: where it is in the job's log, and what it wants of it.
final class Subscription {
    let job: Job
    var cursor: LogCursor
    let filter: EventFilter
    var complete = false
    /// True while a read of the log file runs in libuv's threadpool for it.
    var reading = false

    init(job: Job, from: Int, every: Int, types: Set<EventType>?) {
        self.job = job
        self.cursor = LogCursor(seq: from)
        self.filter = EventFilter(every: every, types: types)
    }

    /// True when the subscriber has every event published so far.
    var isCaughtUp: Bool { cursor.seq > job.log.publishedSeq }
}
