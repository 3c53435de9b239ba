import Foundation
#if canImport(Glibc)
import Glibc
#endif
import LTEngine
import LTProtocol

/// A job's durable position: the trainer's whole state, the last event written before it, and where that event
/// ends in the log. Written atomically (temp file, fsync, rename) every few thousand steps or at epoch ends (at
/// most every 200 ms), and always on pause, on shutdown and at the end.
struct JobCheckpoint: Codable, Equatable {
    static let currentVersion = 1
    var version = JobCheckpoint.currentVersion
    /// The seq of the last event in the log when this was written (0: none yet).
    var seq: Int
    /// The log's length in bytes at `seq`: a restarted daemon cuts the log back to this.
    var offset: Int
    /// running or paused for a live job; a final state once the job is over.
    var state: JobState
    var summary: JobSummary
    /// nil once the job is over.
    var trainer: TrainerCheckpoint?

    private static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        return encoder
    }

    private static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        return decoder
    }

    func encoded() throws -> [UInt8] {
        var bytes = Array(try JobCheckpoint.encoder().encode(self))
        bytes.append(0x0A)
        return bytes
    }

    /// Writes this as the job's checkpoint, atomically and durably (a failure leaves the last one in place).
    func write(to files: JobFiles) throws(SystemError) {
        let bytes: [UInt8]
        do { bytes = try encoded() } catch {
            throw SystemError(operation: "encode checkpoint for", path: files.directory, code: EINVAL)
        }
        try FileIO.writeAtomically(bytes, to: files.checkpoint, directory: files.directory)
    }

    static func decode(_ bytes: [UInt8]) throws -> JobCheckpoint {
        try decoder().decode(JobCheckpoint.self, from: Data(bytes))
    }

    /// Reads the checkpoint at `path` and checks it against the log it describes (`logBytes` long): its format
    /// version is one this ltd reads, and 0 ≤ seq ≤ offset ≤ logBytes (every event takes at least one byte), so no
    /// number from the disk is used unchecked. nil when there is none yet (ENOENT only: a checkpoint that exists but
    /// cannot be read is an error, never "none", which would cut the log back to nothing).
    static func read(path: String, logBytes: Int) throws(StateStore.LoadError) -> JobCheckpoint? {
        let bytes: [UInt8]
        do { bytes = try FileIO.readAll(path: path) } catch {
            if error.code == ENOENT { return nil }
            throw .unreadable("\(path): \(error)")
        }
        let checkpoint: JobCheckpoint
        do { checkpoint = try decode(bytes) } catch {
            throw .unreadable("\(path) is not a checkpoint this ltd can read: \(error)")
        }
        guard checkpoint.version >= 1, checkpoint.version <= currentVersion else {
            throw .unreadable("\(path) has format version \(checkpoint.version); this ltd reads version \(currentVersion) (run the ltd that wrote it, or a newer one)")
        }
        guard checkpoint.seq >= 0, checkpoint.offset >= 0, checkpoint.seq <= checkpoint.offset, checkpoint.offset <= logBytes else {
            throw .unreadable("\(path) claims \(checkpoint.seq) event(s) in \(checkpoint.offset) byte(s) of log, but the log holds \(logBytes) byte(s)")
        }
        return checkpoint
    }
}
