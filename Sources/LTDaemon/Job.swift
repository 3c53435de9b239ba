#if canImport(Glibc)
import Glibc
#endif
import LTEngine
import LTProtocol

/// The loop thread's side of one job: its shared record, its thread until joined, its event log, and the
/// connections that follow it.
final class Job {
    let record: JobRecord
    let log: EventLog
    /// The job thread, until it has exited and been joined.
    var thread: pthread_t?
    /// The spec while the job thread runs (shared with it, so no copy); dropped once the job is over.
    var spec: JobSpec?
    /// Connections subscribed to this job, by connection identity.
    var subscribers: [ObjectIdentifier: Connection] = [:]
    /// For an external job (created by a client, see ExternalJobs.swift): its checker, publisher and log writer.
    var external: ExternalFeed?

    init(record: JobRecord, log: EventLog) {
        self.record = record
        self.log = log
    }

    var name: String { record.name }

    /// Its final state is reached or its log has ended (it will write no more events).
    var isOver: Bool { record.summary.withLock { $0.state.isFinal } || log.ended }
}
