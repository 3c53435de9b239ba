import LTEngine

public enum EventType: String, Sendable, CaseIterable, Hashable {
    case start, state, step, epoch, end
}

public enum JobState: String, Sendable, Codable, CaseIterable {
    case running, paused, finished, cancelled, diverged, failed
    /// Only in `status` and `list`, never in an event: the daemon found the job's directory but could not read its
    /// spec or checkpoint (the status's `reason` says why). Its files are left as they are; it can be deleted.
    case damaged
    /// finished, cancelled, diverged, failed and damaged are final: the job will not run again.
    public var isFinal: Bool {
        switch self {
        case .running, .paused: return false
        case .finished, .cancelled, .diverged, .failed, .damaged: return true
        }
    }
}

/// Encodes each event once, as one `\n`-terminated line, numbers in the job's precision (docs/PROTOCOL.md, "Events").
public enum EventEncoder {
    /// Batches of at most this many rows carry `x`, `y` and `pred`.
    public static let maxRowsWithValues = 64
    /// Contiguous batches of more than this many rows carry `range` instead of `indices`.
    public static let maxIndicesForContiguous = 1024

    private static func header(_ w: inout JSONWriter, _ type: StaticString, job: String, seq: Int) {
        w.beginObject()
        w.key("type"); w.rawString(type)
        w.field("job", job)
        w.field("seq", seq)
    }

    private static func finish(_ w: inout JSONWriter) -> [UInt8] {
        w.endObject()
        w.newline()
        return w.bytes
    }

    /// `external` adds `kind`, `platform` and `shuffled` for a job fed from outside (native jobs leave them out).
    public static func start(job: String, seq: Int, spec: JobSpec, record: StartRecord, external: ExternalRun? = nil) -> [UInt8] {
        var w = JSONWriter(precision: spec.precision, capacity: 1024 + 40 * spec.data.x.count)
        header(&w, "start", job: job, seq: seq)
        w.field("precision", spec.precision.rawValue)
        w.key("spec"); w.value(spec.json)
        w.field("w", record.w)
        w.field("b", record.b)
        w.key("init"); w.beginObject()
        w.field("initializer", record.origin.initializer)
        if let seed = record.origin.seed { w.key("seed"); w.integer(seed) }
        if let seed = record.origin.initializerSeed { w.key("initializer_seed"); w.integer(seed) }
        if let limit = record.origin.limit { w.field("limit", limit) }
        if let u = record.origin.unitUniform { w.field("unit_uniform", u) }
        w.endObject()
        w.key("optimum"); w.optimum(record.optimum)
        w.field("n_train", spec.data.x.count)
        w.field("n_val", (spec.validation ?? spec.data).x.count)
        w.field("epochs", spec.epochs)
        w.field("batch_size", spec.batchSize)
        w.field("steps_per_epoch", record.stepsPerEpoch)
        w.field("total_steps", record.totalSteps)
        // The optimizer as it runs: Keras's defaults filled in, in the job's precision.
        w.key("optimizer"); w.beginObject()
        let optimizer = KerasDefaults.resolved(spec.optimizer)
        w.field("name", optimizer.name.rawValue)
        for key in OptimizerSpec.jsonKeys(for: optimizer.name) {
            switch optimizer.parameter(key) {
            case .number(let v)?: w.key(key); w.number(v)
            case .flag(let b)?: w.key(key); w.bool(b)
            case nil: if key == "weight_decay" { w.key(key); w.null() }
            }
        }
        w.endObject()
        slots(&w, record.slots)
        if let external {
            w.field("kind", JobKind.external.rawValue)
            w.key("platform"); w.value(external.platform)
            w.field("shuffled", external.shuffled)
        }
        return finish(&w)
    }

    public static func state(job: String, seq: Int, state: JobState, message: String?) -> [UInt8] {
        var w = JSONWriter(precision: .float64, capacity: 96 + (message?.utf8.count ?? 0))
        header(&w, "state", job: job, seq: seq)
        w.field("state", state.rawValue)
        if let message { w.field("message", message) }
        return finish(&w)
    }

    /// One optimizer step. `batch.x`, `y` and `pred` only for batches of at most 64 rows; a contiguous batch of more
    /// than 1024 rows gives `range` instead of `indices`. A job's thread holds a `JobEncoder` instead (same bytes,
    /// the job's constant parts spelled once).
    public static func step(job: String, seq: Int, record r: StepRecord, spec: JobSpec) -> [UInt8] {
        JobEncoder(job: job, spec: spec).stepLine(seq: seq, record: r)
    }

    /// The step event through `JSONWriter`, for what `JobEncoder` does not bound (indices outside the dataset).
    static func generalStep(job: String, seq: Int, record r: StepRecord, spec: JobSpec) -> [UInt8] {
        let rows = r.batch.count
        var w = JSONWriter(precision: spec.precision, capacity: 512 + (rows <= maxRowsWithValues ? 40 * rows : 8 * min(rows, 4096)))
        header(&w, "step", job: job, seq: seq)
        w.field("epoch", r.epoch)
        w.field("step", r.step)
        w.field("iteration", r.iteration)
        w.key("batch"); w.beginObject()
        w.field("size", rows)
        if rows > maxIndicesForContiguous, let first = contiguousStart(r.batch) {
            w.key("range"); w.beginArray(); w.integer(first); w.integer(first + rows); w.endArray()
        } else {
            w.key("indices"); w.beginArray()
            for k in 0..<rows { w.integer(r.batch[k]) }
            w.endArray()
        }
        if rows <= maxRowsWithValues {
            let x = spec.data.x, y = spec.data.y
            w.key("x"); w.beginArray()
            for k in 0..<rows { w.number(x[r.batch[k]]) }
            w.endArray()
            w.key("y"); w.beginArray()
            for k in 0..<rows { w.number(y[r.batch[k]]) }
            w.endArray()
            w.key("pred"); w.beginArray()
            for k in 0..<rows { w.number(prediction(x[r.batch[k]], w: r.wBefore, b: r.bBefore, precision: spec.precision)) }
            w.endArray()
        }
        w.endObject()
        w.field("w_before", r.wBefore)
        w.field("b_before", r.bBefore)
        w.field("grad_w", r.gradW)
        w.field("grad_b", r.gradB)
        w.field("w_after", r.wAfter)
        w.field("b_after", r.bAfter)
        w.field("batch_loss", r.batchLoss)
        w.field("batch_rmse", r.batchRmse)
        w.field("loss", r.loss)
        w.field("rmse", r.rmse)
        w.field("val_loss", r.valLoss)
        w.field("val_rmse", r.valRmse)
        slots(&w, r.slots)
        return finish(&w)
    }

    public static func epoch(job: String, seq: Int, record r: EpochRecord, precision: Precision) -> [UInt8] {
        var w = JSONWriter(precision: precision, capacity: 256)
        header(&w, "epoch", job: job, seq: seq)
        w.field("epoch", r.epoch)
        w.field("iteration", r.iteration)
        w.field("loss", r.loss)
        w.field("rmse", r.rmse)
        w.field("val_loss", r.valLoss)
        w.field("val_rmse", r.valRmse)
        w.field("w", r.w)
        w.field("b", r.b)
        return finish(&w)
    }

    public static func end(job: String, seq: Int, state: JobState, iteration: Int, epoch: Int, w wValue: Double, b: Double,
                           message: String?, precision: Precision) -> [UInt8] {
        var w = JSONWriter(precision: precision, capacity: 192 + (message?.utf8.count ?? 0))
        header(&w, "end", job: job, seq: seq)
        w.field("state", state.rawValue)
        w.field("iteration", iteration)
        w.field("epoch", epoch)
        w.field("w", wValue)
        w.field("b", b)
        if let message { w.field("message", message) }
        return finish(&w)
    }

    /// Dense's output `x·w + b` for one row, rounded as the job computes it (no fused multiply-add).
    static func prediction(_ x: Double, w: Double, b: Double, precision: Precision) -> Double {
        switch precision {
        case .float32:
            let product = Float(x) * Float(w)
            return Double(product + Float(b))
        case .float64:
            let product = x * w
            return product + b
        }
    }

    /// The first row when the batch's rows are consecutive ascending dataset rows, else nil.
    static func contiguousStart(_ batch: BatchRows) -> Int? {
        guard batch.count > 0 else { return nil }
        guard let order = batch.order else { return batch.range.lowerBound }
        let first = order[batch.range.lowerBound]
        var expected = first
        for i in batch.range {
            guard order[i] == expected else { return nil }
            expected += 1
        }
        return first
    }

    private static func slots(_ w: inout JSONWriter, _ s: OptimizerSlots) {
        w.key("slots"); w.beginObject()
        w.key("kernel"); slotValues(&w, s.names, s.kernel)
        w.key("bias"); slotValues(&w, s.names, s.bias)
        w.endObject()
    }

    private static func slotValues(_ w: inout JSONWriter, _ names: [String], _ v: (Double, Double, Double)) {
        w.beginObject()
        if names.count > 0 { w.key(names[0]); w.number(v.0) }
        if names.count > 1 { w.key(names[1]); w.number(v.1) }
        if names.count > 2 { w.key(names[2]); w.number(v.2) }
        w.endObject()
    }
}

/// A parsed event line (client side: ltctl, tests).
public struct Event: Sendable, Equatable {
    public var type: EventType
    public var job: String
    public var seq: Int
    public var raw: JSONValue

    /// Parses one event line; fails on anything that is not an event (replies, errors, bad JSON).
    public init(line: some Collection<UInt8>) throws(JSONShapeError) {
        let value: JSONValue
        do { value = try JSONParser.parse(line) } catch {
            throw JSONShapeError(path: "", reason: "not JSON: \(error.description)")
        }
        try self.init(json: value)
    }

    public init(json: JSONValue) throws(JSONShapeError) {
        let r = JSONShapeReader(json)
        let typeName = try r.string("type")
        guard let type = EventType(rawValue: typeName) else {
            throw JSONShapeError(path: "type", reason: "\"\(typeName)\" is not an event type")
        }
        self.type = type
        job = try r.string("job")
        seq = try r.int("seq")
        raw = json
    }

    /// A number field (or the non-finite strings "NaN", "Infinity", "-Infinity"); nested keys with dots: "optimum.w".
    public func double(_ key: String) -> Double? { lookup(key)?.doubleValue }
    /// A number field rounded to float32: the exact value a float32 job computed.
    public func float(_ key: String) -> Float? { double(key).map { Float($0) } }
    public func int(_ key: String) -> Int? { lookup(key)?.intValue }
    public func string(_ key: String) -> String? { lookup(key)?.stringValue }
    public func bool(_ key: String) -> Bool? { lookup(key)?.boolValue }
    public func value(_ key: String) -> JSONValue? { lookup(key) }
    /// An array of numbers ("batch.x").
    public func doubles(_ key: String) -> [Double]? {
        guard let a = lookup(key)?.arrayValue else { return nil }
        var result: [Double] = []
        result.reserveCapacity(a.count)
        for e in a { guard let d = e.doubleValue else { return nil }; result.append(d) }
        return result
    }
    public func ints(_ key: String) -> [Int]? {
        guard let a = lookup(key)?.arrayValue else { return nil }
        var result: [Int] = []
        result.reserveCapacity(a.count)
        for e in a { guard let i = e.intValue else { return nil }; result.append(i) }
        return result
    }
    /// The `state` of a state or end event.
    public var state: JobState? { string("state").flatMap(JobState.init(rawValue:)) }

    private func lookup(_ key: String) -> JSONValue? {
        var v: JSONValue? = raw
        for part in key.split(separator: ".", omittingEmptySubsequences: false) { v = v?[String(part)] }
        return v
    }
}

/// A line that is not shaped as expected (client side).
public struct JSONShapeError: Error, Sendable, Equatable, CustomStringConvertible {
    public var path: String
    public var reason: String
    public init(path: String, reason: String) { self.path = path; self.reason = reason }
    public var description: String { path.isEmpty ? reason : "\(path): \(reason)" }
}

/// Typed field reads for client-side decoding.
struct JSONShapeReader {
    let value: JSONValue
    init(_ value: JSONValue) { self.value = value }

    func field(_ key: String) throws(JSONShapeError) -> JSONValue {
        guard case .object = value else { throw JSONShapeError(path: "", reason: "expected an object, got \(value.typeName)") }
        guard let v = value[key] else { throw JSONShapeError(path: key, reason: "missing") }
        return v
    }
    /// The field `key`, read by `get`; `expected` names what was wanted, for the error.
    private func typed<T>(_ key: String, _ expected: String, _ get: (JSONValue) -> T?) throws(JSONShapeError) -> T {
        let v = try field(key)
        guard let t = get(v) else { throw JSONShapeError(path: key, reason: "expected \(expected), got \(v.typeName)") }
        return t
    }
    func string(_ key: String) throws(JSONShapeError) -> String { try typed(key, "a string") { $0.stringValue } }
    func int(_ key: String) throws(JSONShapeError) -> Int { try typed(key, "an integer") { $0.intValue } }
    func double(_ key: String) throws(JSONShapeError) -> Double { try typed(key, "a number") { $0.doubleValue } }
    func bool(_ key: String) throws(JSONShapeError) -> Bool { try typed(key, "true or false") { $0.boolValue } }
    func optionalString(_ key: String) throws(JSONShapeError) -> String? {
        guard let v = value[key], !v.isNull else { return nil }
        return try string(key)
    }
    func optionalInt(_ key: String) throws(JSONShapeError) -> Int? {
        guard let v = value[key], !v.isNull else { return nil }
        return try int(key)
    }
    func optionalDouble(_ key: String) throws(JSONShapeError) -> Double? {
        guard let v = value[key], !v.isNull else { return nil }
        return try double(key)
    }
}

extension JSONWriter {
    /// The least-squares optimum as `{"w","b","mse"}`, or null: float64 maths whatever the job's precision.
    mutating func optimum(_ optimum: Optimum?) {
        guard let optimum else { return null() }
        beginObject()
        key("w"); number(optimum.w, precision: .float64)
        key("b"); number(optimum.b, precision: .float64)
        key("mse"); number(optimum.mse, precision: .float64)
        endObject()
    }
}
