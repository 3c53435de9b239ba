import LTProtocol

// Retention: jobs that are over (finished, cancelled, diverged, failed; never damaged, running or paused) are
// removed once they ended longer ago than `ltd --keep-finished`, or by hand with the `prune` op. Every removal goes
// the way `delete` goes (`Server.discard`): the directory renamed away on the loop, removed in the threadpool.

/// `ltd --keep-finished`: checks once restore is done, then from the housekeeping timer every quarter of the
/// retention time (at least every second, at most every hour).
final class Retention {
    unowned let server: Server
    /// Seconds a job is kept after it ends; nil: forever.
    let keep: Int?
    /// When the next check is due (monotonic nanoseconds); nil until restore has registered every job.
    private var nextCheck: UInt64?

    init(server: Server, keep: Int?) { self.server = server; self.keep = keep }

    private var period: UInt64 { UInt64(min(3_600, max(1, (keep ?? 0) / 4))) * 1_000_000_000 }

    /// Removes the jobs that are over and ended more than `keep` ago. Called when restore ends, then by `tick`.
    func check() {
        guard let keep, !server.isShuttingDown else { return }
        nextCheck = Clock.monotonicNanoseconds() &+ period
        for job in server.over(endedAtLeast: keep, ago: Clock.wallSeconds(), among: server.jobs.inOrder) {
            let ended = job.record.summary.withLock { $0.ended } ?? "?"
            if server.discard(job, because: "was removed: ltd keeps jobs \(DurationText.describe(keep)) after they end") == nil {
                JobJournal.expired(job.record, ended: ended, keep: DurationText.describe(keep))
            }
        }
    }

    /// The housekeeping timer's call, every second.
    func tick() {
        guard let due = nextCheck, Clock.monotonicNanoseconds() >= due else { return }
        check()
    }
}

extension Server {
    /// The jobs among `jobs` that are over (not damaged) and ended at least `seconds` before `now` (wall seconds).
    func over(endedAtLeast seconds: Int, ago now: Int, among jobs: [Job]) -> [Job] {
        jobs.filter { job in
            let (state, ended) = job.record.summary.withLock { ($0.state, $0.ended) }
            guard state.isFinal, state != .damaged, let ended, let at = Clock.seconds(ofUTC: ended) else { return false }
            return now - at >= seconds
        }
    }

    /// Removes a job that is over, as `delete`, `prune` and retention do: its thread joined (it has exited or is
    /// about to), its subscribers told it `reason` (e.g. "was deleted"), its directory renamed away at once and
    /// removed in the threadpool. Returns the error when the directory cannot be renamed (the job then stays).
    func discard(_ job: Job, because reason: String) -> SystemError? {
        jobs.joinThread(of: job)
        let freed = jobs.store.bytesInUse(of: job.record.key)
        do {
            removeInBackground(try jobs.store.retire(job: job.record.key))
            jobs.budget.release(freed, owner: job.record.owner)
        } catch {
            Log.error("job \(job.record.fullName): cannot remove \(job.record.files.directory): \(error)")
            return error
        }
        for subscriber in job.subscribers.values {
            subscriber.send(ProtocolError(.unknownJob, "job \(job.name) \(reason); its events are gone").line)
            subscriber.endSubscription()
        }
        jobs.remove(job)
        return nil
    }

    /// The `prune` op: the caller's jobs (everyone's with `all`, for root and the admin group) that are over and
    /// ended at least `olderThan` seconds ago are removed (with `dryRun`, only listed).
    func prune(olderThan: Int, all: Bool, dryRun: Bool, _ connection: Connection, id: JSONValue?) {
        let everyone = access.roleOverEveryone(of: connection)
        if all, everyone == nil {
            Log.info("refused: \(PeerCredentials.describe(uid: connection.peerUID)) may not prune every user's jobs")
            return connection.send(ProtocolError(.permissionDenied, "only root or a member of the group \(access.adminGroup) may prune every user's jobs; without --all, prune removes your own", id: id).line)
        }
        let candidates = all ? jobs.inOrder : jobs.inOrder(ownedBy: connection.peerUID)
        var removed: [Reply.PrunedJob] = []
        var failed: [(job: Reply.PrunedJob, error: String)] = []
        for job in over(endedAtLeast: olderThan, ago: Clock.wallSeconds(), among: candidates) {
            let record = job.record
            let summary = record.summary.withLock { $0 }
            let entry = Reply.PrunedJob(job: record.name, fullName: record.fullName, owner: record.owner,
                                        state: summary.state, ended: summary.ended ?? "")
            if dryRun { removed.append(entry); continue }
            let actor = PeerCredentials.describe(uid: connection.peerUID)
            if let error = discard(job, because: "was pruned by \(actor)") {
                failed.append((entry, "cannot remove its files: \(error)"))
                continue
            }
            removed.append(entry)
            let role = record.owner == connection.peerUID ? .owner : everyone ?? .owner
            JobJournal.audit("prune", of: record, by: connection, role: role, detail: " (ended \(entry.ended))")
        }
        connection.send(Reply.pruned(id: id, olderThan: olderThan, dryRun: dryRun, removed: removed, failed: failed))
    }
}
