import LTEngine

/// One client request (docs/PROTOCOL.md, "Requests").
public enum Request: Sendable, Equatable {
    case hello
    /// `job` is a short name: the job is always the caller's.
    case start(job: String, spec: JobSpec)
    /// The caller's own jobs, or everyone's with `all`.
    case list(all: Bool)
    case status(job: String)
    /// `types` nil means every type; `end` is delivered whatever `types` says.
    case subscribe(job: String, from: Int, every: Int, types: Set<EventType>?)
    case unsubscribe
    case pause(job: String)
    case resume(job: String)
    case step(job: String, count: Int)
    case cancel(job: String)
    case delete(job: String)
    /// The worked example of one step (iteration 0: the initial weights), computed by the engine.
    case explain(job: String, iteration: Int)
    /// An external job: the publisher (this connection) sends its steps with `publish` (docs/PROTOCOL.md, "External jobs").
    case create(job: String, spec: JobSpec, run: ExternalRun)
    /// One event of an external job, from the connection that created it.
    case publish(job: String, event: JSONValue)
    /// Removes the caller's jobs (everyone's with `all`) that are over and ended more than `olderThan` seconds ago;
    /// with `dryRun`, only says which.
    case prune(olderThan: Int, all: Bool, dryRun: Bool)
    /// What the daemon holds and each limit's use (docs/PROTOCOL.md, "stats").
    case stats

    /// The wire `op`.
    public var op: String {
        switch self {
        case .hello: return "hello"
        case .start: return "start"
        case .list: return "list"
        case .status: return "status"
        case .subscribe: return "subscribe"
        case .unsubscribe: return "unsubscribe"
        case .pause: return "pause"
        case .resume: return "resume"
        case .step: return "step"
        case .cancel: return "cancel"
        case .delete: return "delete"
        case .explain: return "explain"
        case .create: return "create"
        case .publish: return "publish"
        case .prune: return "prune"
        case .stats: return "stats"
        }
    }

    /// The job the request names, if any: a short name for `start` and `create`, else a `JobReference`'s text.
    public var job: String? {
        switch self {
        case .hello, .list, .unsubscribe, .prune, .stats: return nil
        case .start(let job, _), .status(let job), .subscribe(let job, _, _, _), .pause(let job), .resume(let job),
             .step(let job, _), .cancel(let job), .delete(let job), .explain(let job, _), .create(let job, _, _),
             .publish(let job, _):
            return job
        }
    }

    public static let ops = ["hello", "start", "list", "status", "subscribe", "unsubscribe", "pause", "resume", "step",
                             "cancel", "delete", "explain", "create", "publish", "prune", "stats"]

    /// Fields each op takes besides `op` and `id`.
    public static func fields(of op: String) -> [String] {
        switch op {
        case "start": return ["job", "spec"]
        case "status", "pause", "resume", "cancel", "delete": return ["job"]
        case "subscribe": return ["job", "from", "every", "types"]
        case "list": return ["all"]
        case "step": return ["job", "count"]
        case "explain": return ["job", "iteration"]
        case "create": return ["job", "spec", "platform", "shuffled"]
        case "publish": return ["job", "event"]
        case "prune": return ["older_than_seconds", "all", "dry_run"]
        default: return []
        }
    }

    public static let maxStepCount = 1_000_000_000
}

/// A request with the `id` to echo in its reply.
public struct RequestLine: Sendable, Equatable {
    public var id: JSONValue?
    public var request: Request

    public init(id: JSONValue? = nil, request: Request) { self.id = id; self.request = request }

    /// Parses and checks one request line (the trailing `\n` may be included). Never traps, whatever the bytes.
    public static func decode(_ line: some Collection<UInt8>) -> Result<RequestLine, ProtocolError> {
        let value: JSONValue
        do {
            value = try JSONParser.parse(line)
        } catch {
            return .failure(ProtocolError(.badJSON, "the line is not valid JSON (\(error.description)); send one JSON object per line, e.g. {\"op\":\"hello\"}"))
        }
        guard case .object(let members) = value else {
            return .failure(ProtocolError(.badRequest, "a request is a JSON object such as {\"op\":\"list\"}, not \(value.typeName)"))
        }
        let id = value["id"]
        do throws(ProtocolError) {
            return .success(RequestLine(id: id, request: try decodeRequest(value, members)))
        } catch {
            var e = error
            e.id = id
            return .failure(e)
        }
    }

    private static func decodeRequest(_ value: JSONValue, _ members: [(key: String, value: JSONValue)]) throws(ProtocolError) -> Request {
        let opList = Request.ops.joined(separator: ", ")
        guard let opValue = value["op"] else {
            throw ProtocolError(.unknownOp, "the request has no \"op\"; use one of: \(opList)")
        }
        guard case .string(let op) = opValue, Request.ops.contains(op) else {
            throw ProtocolError(.unknownOp, "unknown op \(SpecReader.describe(opValue)); use one of: \(opList)")
        }
        let fields = Request.fields(of: op)
        for m in members where m.key != "op" && m.key != "id" && !fields.contains(m.key) {
            let takes = fields.isEmpty ? "no fields besides op and id" : "only: \(fields.joined(separator: ", ")) (and op, id)"
            throw ProtocolError(.badRequest, "unknown field \"\(m.key)\" for op \(op); \(op) takes \(takes)", field: m.key)
        }
        switch op {
        case "hello": return .hello
        case "list": return .list(all: try flag(value, "all"))
        case "prune":
            return .prune(olderThan: try integer(value, "older_than_seconds", in: 0...Int.max) ?? 0,
                          all: try flag(value, "all"), dryRun: try flag(value, "dry_run"))
        case "unsubscribe": return .unsubscribe
        case "stats": return .stats
        case "start":
            return .start(job: try jobName(value, op: op, ownName: true), spec: try spec(value, op: op))
        case "create":
            let job = try jobName(value, op: op, ownName: true)
            let spec = try spec(value, op: op)
            // The recorded run: its initial weights are constants, and a shuffle is either none or unknown.
            guard case .constant = spec.initialization else {
                throw ProtocolError(.invalidSpec, "init: an external job records the initial weights it started from; give {\"kernel\": K, \"bias\": B}", field: "init")
            }
            // The run's shuffle: none, or Keras's seeded one (the global seed the run had); any other shuffle is
            // one ltd made up, not the run's.
            var shuffled = false
            switch spec.shuffle {
            case .none: break
            case .seeded: shuffled = true
            case .everyEpoch, .order:
                throw ProtocolError(.invalidSpec, "shuffle: an external job's spec has shuffle false, or {\"seed\": S} for a run Keras shuffled after set_random_seed(S); a run shuffled without a seed is created with shuffle false and \"shuffled\": true", field: "shuffle")
            }
            if let v = value["shuffled"], !v.isNull {
                guard let b = v.boolValue else {
                    throw ProtocolError(.badRequest, "\"shuffled\" must be true or false, not \(SpecReader.describe(v))", field: "shuffled")
                }
                shuffled = shuffled || b
            }
            return .create(job: job, spec: spec, run: ExternalRun(platform: try ExternalRun.platform(value["platform"]), shuffled: shuffled))
        case "publish":
            let job = try jobName(value, op: op)
            guard let event = value["event"], case .object = event else {
                throw ProtocolError(.badRequest, "publish needs \"event\", an object such as {\"type\":\"step\",...} (see docs/PROTOCOL.md, \"External jobs\")", field: "event")
            }
            return .publish(job: job, event: event)
        case "status": return .status(job: try jobName(value, op: op))
        case "pause": return .pause(job: try jobName(value, op: op))
        case "resume": return .resume(job: try jobName(value, op: op))
        case "cancel": return .cancel(job: try jobName(value, op: op))
        case "delete": return .delete(job: try jobName(value, op: op))
        case "step":
            let job = try jobName(value, op: op)
            let count = try integer(value, "count", in: 1...Request.maxStepCount) ?? 1
            return .step(job: job, count: count)
        case "explain":
            let job = try jobName(value, op: op)
            guard let iteration = try integer(value, "iteration", in: 0...Int.max) else {
                throw ProtocolError(.badRequest, "explain needs \"iteration\", the step to explain (from 1; 0 for the initial weights)", field: "iteration")
            }
            return .explain(job: job, iteration: iteration)
        case "subscribe":
            let job = try jobName(value, op: op)
            let from = try integer(value, "from", in: 1...Int.max) ?? 1
            let every = try integer(value, "every", in: 1...Int.max) ?? 1
            return .subscribe(job: job, from: from, every: every, types: try eventTypes(value["types"]))
        default:
            throw ProtocolError(.unknownOp, "unknown op \"\(op)\"; use one of: \(opList)")
        }
    }

    private static func spec(_ value: JSONValue, op: String) throws(ProtocolError) -> JobSpec {
        guard let specValue = value["spec"] else {
            throw ProtocolError(.badRequest, "\(op) needs \"spec\", the job's spec object (see docs/PROTOCOL.md)", field: "spec")
        }
        guard case .object = specValue else {
            throw ProtocolError(.badRequest, "\"spec\" must be an object, not \(specValue.typeName)", field: "spec")
        }
        do throws(SpecError) {
            return try JobSpec(json: specValue)
        } catch {
            throw ProtocolError(.invalidSpec, error.description, field: error.field)
        }
    }

    /// The `job` field: a `JobReference`, or with `ownName` (start, create: the caller names a job of their own) a
    /// short name.
    private static func jobName(_ value: JSONValue, op: String, ownName: Bool = false) throws(ProtocolError) -> String {
        guard let v = value["job"] else {
            throw ProtocolError(.badRequest, "\(op) needs \"job\", the job's name", field: "job")
        }
        guard case .string(let name) = v else {
            throw ProtocolError(.badRequest, "\"job\" must be a string (the job's name), not \(v.typeName)", field: "job")
        }
        if ownName, let reference = JobReference(name), reference.owner != nil {
            throw ProtocolError(.invalidJobName, "\(op) takes a short name, as the job will be yours (\(reference.name)), not \(SpecReader.describe(v))", field: "job")
        }
        guard ownName ? JobName.isValid(name) : JobReference(name) != nil else {
            let rule = ownName ? JobName.rule : JobReference.rule
            throw ProtocolError(.invalidJobName, "job name \(SpecReader.describe(v)) is not valid; use \(rule)", field: "job")
        }
        return name
    }

    /// An optional boolean field (absent or null: false).
    private static func flag(_ value: JSONValue, _ key: String) throws(ProtocolError) -> Bool {
        guard let v = value[key], !v.isNull else { return false }
        guard let flag = v.boolValue else {
            throw ProtocolError(.badRequest, "\"\(key)\" must be true or false, not \(SpecReader.describe(v))", field: key)
        }
        return flag
    }

    private static func integer(_ value: JSONValue, _ key: String, in range: ClosedRange<Int>) throws(ProtocolError) -> Int? {
        guard let v = value[key], !v.isNull else { return nil }
        guard case .number = v, let i = v.intValue, range.contains(i) else {
            let upper = range.upperBound == Int.max ? "or more" : "to \(range.upperBound)"
            throw ProtocolError(.badRequest, "\"\(key)\" must be an integer from \(range.lowerBound) \(upper), not \(SpecReader.describe(v))", field: key)
        }
        return i
    }

    private static func eventTypes(_ v: JSONValue?) throws(ProtocolError) -> Set<EventType>? {
        guard let v, !v.isNull else { return nil }
        let names = EventType.allCases.map(\.rawValue).joined(separator: ", ")
        guard case .array(let elements) = v else {
            throw ProtocolError(.badRequest, "\"types\" must be a list of event types (\(names)), not \(v.typeName)", field: "types")
        }
        var types = Set<EventType>()
        for (i, e) in elements.enumerated() {
            guard case .string(let s) = e, let t = EventType(rawValue: s) else {
                throw ProtocolError(.badRequest, "types[\(i)] is \(SpecReader.describe(e)); event types are \(names)", field: "types[\(i)]")
            }
            types.insert(t)
        }
        return types
    }

    /// The request as one `\n`-terminated line (what ltctl and tests send).
    public var line: [UInt8] {
        var w = JSONWriter(precision: .float64)
        w.beginObject()
        w.field("op", request.op)
        if let id { w.key("id"); w.value(id) }
        switch request {
        case .hello, .unsubscribe, .stats: break
        case .list(let all):
            if all { w.field("all", true) }
        case let .start(job, spec):
            w.field("job", job); w.key("spec"); w.value(spec.json)
        case .status(let job), .pause(let job), .resume(let job), .cancel(let job), .delete(let job):
            w.field("job", job)
        case let .step(job, count):
            w.field("job", job); w.field("count", count)
        case let .explain(job, iteration):
            w.field("job", job); w.field("iteration", iteration)
        case let .create(job, spec, run):
            w.field("job", job); w.key("spec"); w.value(spec.json)
            w.key("platform"); w.value(run.platform)
            w.field("shuffled", run.shuffled)
        case let .publish(job, event):
            w.field("job", job); w.key("event"); w.value(event)
        case let .prune(olderThan, all, dryRun):
            w.field("older_than_seconds", olderThan)
            if all { w.field("all", true) }
            if dryRun { w.field("dry_run", true) }
        case let .subscribe(job, from, every, types):
            w.field("job", job); w.field("from", from); w.field("every", every)
            if let types {
                w.key("types"); w.beginArray()
                for t in EventType.allCases where types.contains(t) { w.string(t.rawValue) }
                w.endArray()
            }
        }
        w.endObject()
        w.newline()
        return w.bytes
    }
}

/// An error reply. `line` is the `\n`-terminated error line the daemon writes.
public struct ProtocolError: Error, Sendable, Equatable, CustomStringConvertible {
    public var code: ErrorCode
    public var message: String
    /// The request field or spec path at fault (`bad_request`, `invalid_job_name`, `invalid_spec`).
    public var field: String?
    /// The job's owner, for `permission_denied`.
    public var owner: UInt32?
    /// The request's `id`, echoed.
    public var id: JSONValue?

    public init(_ code: ErrorCode, _ message: String, field: String? = nil, owner: UInt32? = nil, id: JSONValue? = nil) {
        self.code = code; self.message = message; self.field = field; self.owner = owner; self.id = id
    }

    public init(code: ErrorCode, message: String, field: String? = nil, owner: UInt32? = nil, id: JSONValue? = nil) {
        self.init(code, message, field: field, owner: owner, id: id)
    }

    /// `{"type":"error","id":…,"code":…,"field":…,"owner":…,"message":…}\n`; absent parts are left out.
    public var line: [UInt8] {
        var w = JSONWriter(precision: .float64, capacity: 128 + message.utf8.count)
        w.beginObject()
        w.field("type", "error")
        if let id { w.key("id"); w.value(id) }
        w.field("code", code.rawValue)
        if let field { w.field("field", field) }
        if let owner { w.key("owner"); w.integer(UInt64(owner)) }
        w.field("message", message)
        w.endObject()
        w.newline()
        return w.bytes
    }

    public var description: String { "\(code.rawValue): \(message)" }

    /// Reads an error line back (client side).
    public init(json: JSONValue) throws(JSONShapeError) {
        let r = JSONShapeReader(json)
        guard try r.string("type") == "error" else { throw JSONShapeError(path: "type", reason: "not an error line") }
        let codeText = try r.string("code")
        guard let code = ErrorCode(rawValue: codeText) else {
            throw JSONShapeError(path: "code", reason: "unknown error code \"\(codeText)\"")
        }
        self.init(code, try r.string("message"), field: try r.optionalString("field"),
                  owner: try r.optionalInt("owner").flatMap { UInt32(exactly: $0) }, id: json["id"])
    }
}
