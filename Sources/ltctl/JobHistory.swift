import Foundation
import LTClient
import LTProtocol

/// A job's events up to the moment of asking (the `last_seq` of the subscription), for compare, explain and export.
struct JobHistory {
    var start: Event?
    var steps: [Event] = []
    var epochs: [Event] = []
    var end: Event?
    /// The job's state when the events were read.
    var state: String

    /// Replays the job's events from seq 1 to the seq current at subscribe time; `types` limits what is kept.
    static func read(job: String, connection: ConnectionOptions, types: Set<EventType> = Set(EventType.allCases)) throws -> JobHistory {
        try read(job: job, from: try connection.connect(), types: types)
    }

    static func read(job: String, from conn: Connection, types: Set<EventType> = Set(EventType.allCases)) throws -> JobHistory {
        let subscription = try conn.subscribe(job: job, from: 1, types: types.union([.end]).map(\.rawValue).sorted())
        var history = JobHistory(state: subscription.state)
        if subscription.isComplete { return history }
        let stop = subscription.lastSeq
        while true {
            let value = try conn.readMessage()
            if value["type"]?.stringValue == "error" { throw Connection.daemonError(value) }
            let event = try Event.decode(value, path: conn.socketPath)
            if event.seq > stop { break }
            switch event.type {
            case .start: history.start = event
            case .step: history.steps.append(event)
            case .epoch: history.epochs.append(event)
            case .end: history.end = event
            case .state: break
            }
            if event.type == .end || event.seq >= stop { break }
        }
        return history
    }

    /// float32 unless the job says float64.
    var isFloat32: Bool { start?.string("precision") != "float64" }

    /// Rounds to the job's precision, as the daemon computes.
    func rounded(_ value: Double) -> Double { isFloat32 ? Double(Float(value)) : value }

    /// A wire number as the job holds it: the exact float32 value for a float32 job.
    func exact(_ value: Double) -> Double { isFloat32 ? Format.exactFloat32(value) : value }

    /// The job's own sqrt, in its precision.
    func squareRoot(_ value: Double) -> Double {
        isFloat32 ? Double(Float(value).squareRoot()) : value.squareRoot()
    }

    /// A number as the daemon would write it: shortest round-trip text in the job's precision.
    func number(_ value: Double) -> JSONValue {
        guard value.isFinite else { return .string(value.isNaN ? "NaN" : (value > 0 ? "Infinity" : "-Infinity")) }
        return .number(isFloat32 ? Float(value).description : value.description)
    }
}

/// Quotes a CSV field when it needs it (RFC 4180).
func csvField(_ s: String) -> String {
    s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" }) ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
}
