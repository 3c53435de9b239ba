/// Every error the daemon can answer with. Shared by daemon and clients; the raw value is the wire `code`.
/// Messages are built where the error happens and always say what to do next.
public enum ErrorCode: String, Sendable, CaseIterable {
    /// The line is not valid JSON, not UTF-8, or nested too deep. The connection stays open.
    case badJSON = "bad_json"
    /// The line exceeds the daemon's limit. The daemon closes the connection after this error.
    case lineTooLong = "line_too_long"
    case unknownOp = "unknown_op"
    /// The line is JSON but not an object, or a request field is missing or has the wrong type or range.
    case badRequest = "bad_request"
    case invalidJobName = "invalid_job_name"
    /// The spec failed validation; the error line also carries `field`.
    case invalidSpec = "invalid_spec"
    case unknownJob = "unknown_job"
    case jobExists = "job_exists"
    /// Only the job's owner or root may control it; the error line also carries `owner`.
    case permissionDenied = "permission_denied"
    /// The operation needs a paused job (step) or an active one (pause, resume, cancel).
    case wrongState = "wrong_state"
    /// delete needs a job in a final state.
    case jobActive = "job_active"
    case tooManyJobs = "too_many_jobs"
    /// The job cannot fit in the daemon's disk limits (`ltd --max-log-bytes` per job, `--max-state-bytes` in all):
    /// `start` or `create` of a job too long, or a `publish` past its log's limit. The message gives the numbers.
    case diskLimit = "disk_limit"
    /// explain asked for an iteration the job has not taken (yet).
    case notReached = "not_reached"
    case alreadySubscribed = "already_subscribed"
    case shuttingDown = "shutting_down"
    /// The daemon's connection limit, in all or for the caller's uid, is reached. The connection is closed.
    case tooManyConnections = "too_many_connections"
    /// The daemon will not hold more for this connection: unfinished request lines of all clients reached their
    /// limit, or a reply would take the connection's unread output past its limit. The connection is closed.
    case busy = "busy"
    case internalError = "internal"
}
