/// What a daemon offers beyond protocol 1 as first released (ltd 0.1.0). `hello` lists them as `capabilities`;
/// a client checks for one before it relies on what it names, and reads a hello without the list (ltd 0.1.0) as
/// an empty one. A capability is only ever added, never renamed or removed within a protocol version
/// (docs/PROTOCOL.md, "Compatibility").
public enum Capability: String, CaseIterable, Sendable {
    /// The `explain` op.
    case explain
    /// `peer` (the caller's identity) in the `hello` reply.
    case helloPeer = "hello_peer"
    /// The spec field `keras` (which Keras version's defaults the job follows).
    case specKeras = "spec_keras"
    /// `batch_rmse` in `step` events.
    case batchRMSE = "batch_rmse"
    /// The `create` and `publish` ops (jobs fed from outside, such as the Keras bridge), and `kind` in job status.
    case externalJobs = "external_jobs"
    /// Names per owner: `OWNER/NAME` job references, `full_name` in job status, `all` on `list` (which otherwise
    /// lists the caller's own jobs), and an admin group that may control any job.
    case ownerNames = "owner_names"
    /// The job state `damaged`, with its `reason`, in `status` and `list` (a job directory the daemon could not read).
    case damagedJobs = "damaged_jobs"
    /// The `prune` op, `ended` in the status of a job that is over, and `ltd --keep-finished`.
    case prune
    /// The `stats` op (`ltctl top`), and the quotas per user `--max-running-per-user` and `--max-bytes-per-user`.
    case stats

    /// The capabilities named in a hello reply; none when the daemon sent no list.
    public static func advertised(in hello: JSONValue) -> Set<String> {
        guard case .array(let values)? = hello["capabilities"] else { return [] }
        return Set(values.compactMap(\.stringValue))
    }
}
