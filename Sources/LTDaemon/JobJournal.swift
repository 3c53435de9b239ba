import LTProtocol

// What the log (the journal, under systemd) records about jobs: started, ended, and every control action with who
// did what to whose job. Each entry carries the job's journal fields (Log.swift), so
// `journalctl LTD_JOB=alice/job1` lists one job's story and `journalctl MESSAGE_ID=…` one kind of event.
enum JobJournal {
    /// A job ended (its thread's last word, or its publisher's `end`).
    static func ended(_ record: JobRecord, _ summary: JobSummary) {
        let kind = record.kind == .external ? "external job" : "job"
        let failed = summary.state == .failed || summary.state == .diverged
        var fields = JournalFields(job: record, messageID: failed ? .jobFailed : .jobFinished)
        fields.extra = [("LTD_STATE", summary.state.rawValue)]
        let text = "\(kind) \(record.fullName) \(summary.state.rawValue) after \(summary.iteration) step(s), \(summary.seq) event(s)\(summary.message.map { ": " + $0 } ?? "")"
        if failed { Log.warning(text, fields) } else { Log.info(text, fields) }
    }

    /// Retention (`ltd --keep-finished`) removed a job, as `delete` would.
    static func expired(_ record: JobRecord, ended: String, keep: String) {
        var fields = JournalFields(job: record, messageID: .controlAction)
        fields.extra = [("LTD_ACTION", "expire"), ("LTD_ACTOR", "ltd"), ("LTD_ROLE", "retention")]
        Log.info("audit: ltd expire \(record.fullName) (owned by \(PeerCredentials.describe(uid: record.owner)); ended \(ended), kept \(keep); --keep-finished)", fields)
    }

    /// One control action: who did what to whose job, and by which right.
    static func audit(_ action: String, of record: JobRecord, by connection: Connection, role: AccessPolicy.Role,
                      detail: String = "") {
        let actor = PeerCredentials.describe(uid: connection.peerUID)
        let whose = role == .owner ? "" : " (owned by \(PeerCredentials.describe(uid: record.owner)); as \(role.rawValue))"
        var fields = JournalFields(job: record, messageID: .controlAction)
        fields.extra = [("LTD_ACTION", action), ("LTD_ACTOR", JobRecord.ownerName(of: connection.peerUID)),
                        ("LTD_ACTOR_UID", String(connection.peerUID)), ("LTD_ROLE", role.rawValue)]
        Log.info("audit: \(actor) \(action) \(record.fullName)\(detail)\(whose)", fields)
    }
}

extension JournalFields {
    /// The fields naming `record`'s job.
    init(job record: JobRecord, messageID: JournalMessageID) {
        self.init(messageID: messageID, job: record.fullName, owner: record.ownerName, uid: record.owner)
    }
}
