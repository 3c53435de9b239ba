import LTEngine

/// Jobs fed from outside (docs/PROTOCOL.md, "External jobs"): a client such as the Keras bridge creates the job with
/// `create` and publishes its steps, epochs and end with `publish`. This file checks what the publisher sends against
/// the documented schema and the job's own shape, and writes the event lines the daemon logs and fans out. It knows
/// nothing of sockets; the daemon assigns `seq`.

/// Native jobs are trained by ltd's engine; external ones are published by a client (the Keras bridge).
public enum JobKind: String, Sendable, Equatable, Codable {
    case native, external
}

/// What `create` brings besides the spec: where the run happened and whether its rows are known.
public struct ExternalRun: Sendable, Equatable {
    /// Keras, TensorFlow and numpy versions, the device, oneDNN: free-form strings and booleans, kept as sent.
    public var platform: JSONValue
    /// True when Keras shuffled without a recorded seed: the steps carry no rows, and the run cannot be replicated.
    public var shuffled: Bool

    public init(platform: JSONValue = .object([]), shuffled: Bool = false) {
        self.platform = platform; self.shuffled = shuffled
    }

    public static let platformKeys = ["keras", "tensorflow", "numpy", "python", "device", "onednn", "backend", "tf_keras"]

    /// Checks `platform`: an object of at most the documented keys, each a short string or a boolean.
    static func platform(_ v: JSONValue?) throws(ProtocolError) -> JSONValue {
        guard let v, !v.isNull else { return .object([]) }
        guard case .object(let members) = v else {
            throw ProtocolError(.badRequest, "\"platform\" must be an object such as {\"keras\":\"3.15.1\",\"device\":\"CPU\"}, not \(v.typeName)", field: "platform")
        }
        for m in members {
            guard platformKeys.contains(m.key) else {
                throw ProtocolError(.badRequest, "unknown platform field \"\(m.key)\"; platform takes: \(platformKeys.joined(separator: ", "))", field: "platform.\(m.key)")
            }
            switch m.value {
            case .string(let s) where s.utf8.count <= 200: continue
            case .bool: continue
            default:
                throw ProtocolError(.badRequest, "platform.\(m.key) must be a string of at most 200 bytes or true/false", field: "platform.\(m.key)")
            }
        }
        return v
    }
}

/// The state of one external job's stream as far as checking the next published event needs it.
public struct ExternalStream: Sendable, Equatable {
    public let job: String
    public let precision: Precision
    public let rows: Int
    public let batchSize: Int
    public let stepsPerEpoch: Int
    public let epochs: Int
    public let shuffled: Bool
    /// Slot names of the job's optimizer, in the engine's order (what a native job of the same spec records).
    public let slotNames: [String]
    public private(set) var iteration = 0
    public private(set) var epoch = 0
    public private(set) var step = 0
    public private(set) var epochsLogged = 0
    public private(set) var w: Double
    public private(set) var b: Double
    public private(set) var ended = false

    /// Steps of the whole run (the trainer's count, which saturates rather than overflows).
    public let totalSteps: Int

    public init(job: String, spec: JobSpec, stepsPerEpoch: Int, totalSteps: Int, slotNames: [String], w: Double, b: Double,
                shuffled: Bool) {
        self.job = job; precision = spec.precision; rows = spec.data.x.count; batchSize = spec.batchSize
        self.stepsPerEpoch = max(stepsPerEpoch, 1); epochs = spec.epochs; self.totalSteps = totalSteps
        self.slotNames = slotNames; self.w = w; self.b = b; self.shuffled = shuffled
    }

    /// What a checked event changes in the job's status.
    public enum Outcome: Sendable, Equatable {
        case step(epoch: Int, step: Int, iteration: Int, w: Double, b: Double, loss: Double, rmse: Double?,
                  valLoss: Double?, valRmse: Double?)
        case epoch
        case end(state: JobState, message: String?)
    }

    /// Checks one published event and writes its lines, the first with `seq` (a step or epoch is one line; an end is
    /// the final `state` and `end`, as a native job ends). On error nothing changes: the log stays valid and the
    /// publisher may send a corrected event.
    public mutating func accept(_ event: JSONValue, seq: Int) throws(ProtocolError) -> (lines: [[UInt8]], outcome: Outcome) {
        guard case .object = event else {
            throw ProtocolError(.badRequest, "\"event\" must be an object such as {\"type\":\"step\",...}, not \(event.typeName)", field: "event")
        }
        guard !ended else {
            throw ProtocolError(.wrongState, "job \(job) has ended; nothing more can be published to it", field: "event")
        }
        let r = Fields(event)
        switch try r.string("type") {
        case "step":
            let (line, outcome) = try acceptStep(r, seq: seq)
            return ([line], outcome)
        case "epoch":
            let (line, outcome) = try acceptEpoch(r, seq: seq)
            return ([line], outcome)
        case "end": return try acceptEnd(r, seq: seq)
        case let other:
            throw ProtocolError(.badRequest, "event.type \"\(other)\" cannot be published; publish step, epoch or end (the daemon writes start itself)", field: "event.type")
        }
    }

    private mutating func acceptStep(_ r: Fields, seq: Int) throws(ProtocolError) -> (line: [UInt8], outcome: Outcome) {
        try r.only(["type", "epoch", "step", "iteration", "batch", "w_before", "b_before", "w_after", "b_after",
                    "loss", "rmse", "val_loss", "val_rmse", "slots"])
        guard iteration < totalSteps else {
            throw ProtocolError(.badRequest, "job \(job) has all its \(totalSteps) steps; publish epoch or end", field: "event")
        }
        let nextIteration = iteration + 1
        let nextEpoch = iteration / stepsPerEpoch + 1, nextStep = iteration % stepsPerEpoch + 1
        let iterationSent = try r.int("iteration"), epochSent = try r.int("epoch"), stepSent = try r.int("step")
        guard iterationSent == nextIteration, epochSent == nextEpoch, stepSent == nextStep else {
            throw ProtocolError(.badRequest, "expected iteration \(nextIteration) (epoch \(nextEpoch), step \(nextStep)), got iteration \(iterationSent) (epoch \(epochSent), step \(stepSent)); steps are published in order, once each", field: "event.iteration")
        }
        // The batch: its size follows from the step (the last batch of an epoch may be partial); rows when known.
        let expectedSize = nextStep < stepsPerEpoch ? batchSize : rows - (stepsPerEpoch - 1) * batchSize
        let batch = try r.object("batch")
        try batch.only(["size", "indices"])
        let size = try batch.int("size")
        guard size == expectedSize else {
            throw ProtocolError(.badRequest, "event.batch.size is \(size); step \(nextStep) of \(stepsPerEpoch) with \(rows) rows and batch size \(batchSize) has \(expectedSize)", field: "event.batch.size")
        }
        var indices: [Int]?
        if let list = batch.value["indices"], !list.isNull {
            guard !shuffled else {
                throw ProtocolError(.badRequest, "this job was created shuffled (rows unknown); its steps carry no indices", field: "event.batch.indices")
            }
            guard case .array(let elements) = list, elements.count == size else {
                throw ProtocolError(.badRequest, "event.batch.indices must be a list of \(size) row numbers", field: "event.batch.indices")
            }
            var out: [Int] = []
            out.reserveCapacity(size)
            for (k, e) in elements.enumerated() {
                guard let i = e.intValue, i >= 0, i < rows else {
                    throw ProtocolError(.badRequest, "event.batch.indices[\(k)] must be a row number from 0 to \(rows - 1), not \(SpecReader.describe(e))", field: "event.batch.indices[\(k)]")
                }
                out.append(i)
            }
            indices = out
        } else if !shuffled {
            throw ProtocolError(.badRequest, "event.batch.indices is missing; an unshuffled run names the rows of every step", field: "event.batch.indices")
        }
        let wBefore = try r.number("w_before"), bBefore = try r.number("b_before")
        let wAfter = try r.number("w_after"), bAfter = try r.number("b_after")
        // rmse is there when the model was compiled with the RootMeanSquaredError metric.
        let loss = try r.number("loss"), rmse = try r.optionalNumber("rmse")
        let valLoss = try r.optionalNumber("val_loss"), valRmse = try r.optionalNumber("val_rmse")
        // Slots: the optimizer's own names, one value per variable.
        var slotValues: [(variable: String, values: [Double])] = []
        let slots = try r.object("slots")
        try slots.only(["kernel", "bias"])
        for variable in ["kernel", "bias"] {
            let v = try slots.object(variable)
            try v.only(slotNames)
            var values: [Double] = []
            for name in slotNames { values.append(try v.number(name)) }
            slotValues.append((variable, values))
        }

        var out = JSONWriter(precision: precision, capacity: 512 + 12 * size)
        out.beginObject()
        out.field("type", "step"); out.field("job", job); out.field("seq", seq)
        out.field("epoch", nextEpoch); out.field("step", nextStep); out.field("iteration", nextIteration)
        out.key("batch"); out.beginObject()
        out.field("size", size)
        if let indices { out.key("indices"); out.integers(indices) }
        out.endObject()
        out.field("w_before", wBefore); out.field("b_before", bBefore)
        out.field("w_after", wAfter); out.field("b_after", bAfter)
        out.field("loss", loss)
        if let rmse { out.field("rmse", rmse) }
        if let valLoss { out.field("val_loss", valLoss) }
        if let valRmse { out.field("val_rmse", valRmse) }
        out.key("slots"); out.beginObject()
        for s in slotValues {
            out.key(s.variable); out.beginObject()
            for (name, value) in zip(slotNames, s.values) { out.key(name); out.number(value) }
            out.endObject()
        }
        out.endObject()
        out.endObject(); out.newline()

        iteration = nextIteration; epoch = nextEpoch; step = nextStep
        w = round(wAfter); b = round(bAfter)
        return (out.bytes, .step(epoch: nextEpoch, step: nextStep, iteration: nextIteration, w: w, b: b,
                                 loss: round(loss), rmse: rmse.map(round), valLoss: valLoss.map(round), valRmse: valRmse.map(round)))
    }

    private mutating func acceptEpoch(_ r: Fields, seq: Int) throws(ProtocolError) -> (line: [UInt8], outcome: Outcome) {
        try r.only(["type", "epoch", "loss", "rmse", "val_loss", "val_rmse"])
        let expected = epochsLogged + 1
        let sent = try r.int("epoch")
        guard sent == expected, expected <= epochs, iteration == expected &* stepsPerEpoch else {
            throw ProtocolError(.badRequest, "epoch \(sent) cannot be published now: epoch \(expected) is next, after its step \(stepsPerEpoch) (\(iteration) steps so far)", field: "event.epoch")
        }
        let loss = try r.number("loss"), rmse = try r.optionalNumber("rmse")
        let valLoss = try r.optionalNumber("val_loss"), valRmse = try r.optionalNumber("val_rmse")
        var out = JSONWriter(precision: precision, capacity: 256)
        out.beginObject()
        out.field("type", "epoch"); out.field("job", job); out.field("seq", seq)
        out.field("epoch", expected); out.field("iteration", iteration)
        out.field("loss", loss)
        if let rmse { out.field("rmse", rmse) }
        if let valLoss { out.field("val_loss", valLoss) }
        if let valRmse { out.field("val_rmse", valRmse) }
        out.field("w", w); out.field("b", b)
        out.endObject(); out.newline()
        epochsLogged = expected
        return (out.bytes, .epoch)
    }

    private mutating func acceptEnd(_ r: Fields, seq: Int) throws(ProtocolError) -> (lines: [[UInt8]], outcome: Outcome) {
        try r.only(["type", "state", "message"])
        let stateText = try r.string("state")
        guard let state = JobState(rawValue: stateText), state.isFinal else {
            throw ProtocolError(.badRequest, "event.state must be finished, cancelled, diverged or failed, not \"\(stateText)\"", field: "event.state")
        }
        if state == .finished, iteration != totalSteps {
            throw ProtocolError(.badRequest, "the job cannot end finished after \(iteration) of its \(totalSteps) steps; end it cancelled or failed, with a message", field: "event.state")
        }
        let message = try r.optionalString("message").map { String($0.prefix(1000)) }
        return (end(state: state, message: message, seq: seq), .end(state: state, message: message))
    }

    /// The final `state` and `end` lines, from `seq`; the job takes no more events.
    public mutating func end(state: JobState, message: String?, seq: Int) -> [[UInt8]] {
        ended = true
        return [EventEncoder.state(job: job, seq: seq, state: state, message: message),
                EventEncoder.end(job: job, seq: seq + 1, state: state, iteration: iteration, epoch: epoch, w: w, b: b,
                                 message: message, precision: precision)]
    }

    public static func lostPublisherMessage(iteration: Int, total: Int) -> String {
        "the publisher disconnected before end, after \(iteration) of \(total) steps (the notebook stopped, was interrupted, or crashed); the steps so far are kept"
    }

    private func round(_ x: Double) -> Double { precision == .float32 ? Double(Float(x)) : x }

    /// Typed reads of the publisher's fields, every failure a `bad_request` naming the field.
    private struct Fields {
        let value: JSONValue
        let path: String
        init(_ value: JSONValue, path: String = "event") { self.value = value; self.path = path }

        func only(_ allowed: [String]) throws(ProtocolError) {
            for m in value.objectMembers ?? [] where !allowed.contains(m.key) {
                throw ProtocolError(.badRequest, "unknown field \(path).\(m.key); \(path) takes: \(allowed.joined(separator: ", "))", field: "\(path).\(m.key)")
            }
        }
        private func present(_ key: String, _ what: String) throws(ProtocolError) -> JSONValue {
            guard let v = value[key], !v.isNull else {
                throw ProtocolError(.badRequest, "\(path).\(key) is missing: \(what)", field: "\(path).\(key)")
            }
            return v
        }
        func string(_ key: String) throws(ProtocolError) -> String {
            let v = try present(key, "a string")
            guard let s = v.stringValue else {
                throw ProtocolError(.badRequest, "\(path).\(key) must be a string, not \(v.typeName)", field: "\(path).\(key)")
            }
            return s
        }
        func optionalString(_ key: String) throws(ProtocolError) -> String? {
            guard let v = value[key], !v.isNull else { return nil }
            return try string(key)
        }
        func int(_ key: String) throws(ProtocolError) -> Int {
            let v = try present(key, "an integer")
            guard let i = v.intValue, i >= 0 else {
                throw ProtocolError(.badRequest, "\(path).\(key) must be an integer of 0 or more, not \(SpecReader.describe(v))", field: "\(path).\(key)")
            }
            return i
        }
        /// A number, or "NaN" / "Infinity" / "-Infinity" (a diverging run's loss).
        func number(_ key: String) throws(ProtocolError) -> Double {
            let v = try present(key, "a number")
            guard let d = v.doubleValue else {
                throw ProtocolError(.badRequest, "\(path).\(key) must be a number (or \"NaN\", \"Infinity\", \"-Infinity\"), not \(SpecReader.describe(v))", field: "\(path).\(key)")
            }
            return d
        }
        func optionalNumber(_ key: String) throws(ProtocolError) -> Double? {
            guard let v = value[key], !v.isNull else { return nil }
            return try number(key)
        }
        func object(_ key: String) throws(ProtocolError) -> Fields {
            let v = try present(key, "an object")
            guard case .object = v else {
                throw ProtocolError(.badRequest, "\(path).\(key) must be an object, not \(v.typeName)", field: "\(path).\(key)")
            }
            return Fields(v, path: "\(path).\(key)")
        }
    }
}
