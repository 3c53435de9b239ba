import Foundation
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

    static func decode(_ bytes: [UInt8]) throws -> JobCheckpoint {
        try decoder().decode(JobCheckpoint.self, from: Data(bytes))
    }
}
