#if canImport(Glibc)
import Glibc
#endif
import LTEngine
import LTProtocol
import Synchronization

/// What `status` and `list` report about a job, kept current by the job thread (one short lock per event), so
/// the loop answers at once however hard the job is working. Also stored in each checkpoint, so a restarted daemon
/// reports finished jobs exactly.
struct JobSummary: Codable, Sendable, Equatable {
    var state: JobState
    var iteration = 0
    var epoch = 0
    var step = 0
    var stepsPerEpoch = 0
    var epochs = 0
    var totalSteps = 0
    var seq = 0
    var w: Double = 0
    var b: Double = 0
    var loss: Double?
    var rmse: Double?
    var valLoss: Double?
    var valRmse: Double?
    var message: String?
    /// When the job ended (`Clock.utcTimestamp`), once it is over. Checkpoints written before ltd recorded it have
    /// none: restore then takes the final checkpoint's modification time, which was written as the job ended.
    var ended: String?
}

/// A job's identity and shared state: created on the loop thread (or by restore, off it), read by both threads.
/// It holds no spec: a job's data lives with its thread while it runs and is read from `spec.json` when asked for
/// later (`explain`), so a finished job costs a few hundred bytes however large its data.
final class JobRecord: Sendable {
    let name: String
    let owner: UInt32
    /// The owner's login name when the record was made (or the uid's digits): the OWNER of `OWNER/NAME`.
    let ownerName: String
    let created: String
    let files: JobFiles
    /// The spec's precision: how `status` writes the job's numbers.
    let precision: Precision
    let control: JobControl
    let summary: Mutex<JobSummary>
    /// native (a job thread trains it) or external (a client publishes it; see ExternalJobs.swift).
    let kind: JobKind
    /// Why the job's directory could not be restored (its state is then `damaged`): nil for a sound job.
    let damage: String?

    init(name: String, owner: UInt32, created: String, files: JobFiles, precision: Precision, summary: JobSummary,
         paused: Bool, kind: JobKind = .native, damage: String? = nil) {
        self.name = name; self.owner = owner; self.ownerName = JobRecord.ownerName(of: owner); self.created = created
        self.files = files; self.precision = precision
        self.kind = kind
        self.damage = damage
        self.control = JobControl(paused: paused)
        self.summary = Mutex(summary)
    }
}
