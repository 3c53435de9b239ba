#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// A TEST HOOK, as SQLite's I/O-error tests have: makes the Nth `write`, `fsync` or `rename` of the state directory
/// fail, to prove that every failure on the disk path keeps what was acknowledged and leaves every job listed.
/// `FileIO` consults it on each of those calls (and nothing else does them on state files).
///
/// Armed only by the environment variable `LTD_FAULT_INJECTION=OPERATION:N[+][:ERRNO]`, read once at start:
/// `write:7` fails the 7th write with ENOSPC; `fsync:3:EIO` the 3rd fsync with EIO; `rename:2+` the 2nd rename
/// and every later one (a disk that stays full). Defaults: ENOSPC for write and rename, EIO for fsync. Counting
/// starts when the process starts; each injected failure is logged ("fault injection: …"). Unset, it costs one
/// load of a nil constant per call.
final class FaultPlan: Sendable {
    enum Operation: String, Sendable, CaseIterable { case write, fsync, rename }

    static let environmentVariable = "LTD_FAULT_INJECTION"

    let operation: Operation
    let nth: Int
    /// Every call from the nth on fails, not only the nth.
    let persistent: Bool
    let code: Int32
    private let calls = Atomic<Int>(0)

    /// The plan the environment arms, read once (`parse` says why a setting is refused).
    static let active: FaultPlan? = {
        guard let text = getenv(environmentVariable).map({ String(cString: $0) }) else { return nil }
        return try? parse(text).get()
    }()

    /// Why the environment's setting cannot be used, if it is set and malformed (ltd then refuses to start).
    static var refusal: String? {
        guard let text = getenv(environmentVariable).map({ String(cString: $0) }) else { return nil }
        if case .failure(let why) = parse(text) { return why.description }
        return nil
    }

    struct Malformed: Error, CustomStringConvertible { let description: String }

    static func parse(_ text: String) -> Result<FaultPlan, Malformed> {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        let usage = "\(environmentVariable) must be OPERATION:N[+][:ERRNO] with OPERATION write, fsync or rename, N ≥ 1 and ERRNO ENOSPC, EIO or EDQUOT (a test hook); got \"\(text)\""
        guard parts.count == 2 || parts.count == 3, let operation = Operation(rawValue: parts[0]) else {
            return .failure(Malformed(description: usage))
        }
        let persistent = parts[1].hasSuffix("+")
        guard let nth = Int(persistent ? String(parts[1].dropLast()) : parts[1]), nth >= 1 else {
            return .failure(Malformed(description: usage))
        }
        let codes: [String: Int32] = ["ENOSPC": ENOSPC, "EIO": EIO, "EDQUOT": EDQUOT]
        let code: Int32
        if parts.count == 3 {
            guard let named = codes[parts[2]] else { return .failure(Malformed(description: usage)) }
            code = named
        } else {
            code = operation == .fsync ? EIO : ENOSPC
        }
        return .success(FaultPlan(operation: operation, nth: nth, persistent: persistent, code: code))
    }

    private init(operation: Operation, nth: Int, persistent: Bool, code: Int32) {
        self.operation = operation; self.nth = nth; self.persistent = persistent; self.code = code
    }

    var summary: String {
        "failing \(operation.rawValue) #\(nth)\(persistent ? " and every later one" : "") with \(FaultPlan.errnoName(code))"
    }

    /// The errno to fail this call with, or nil to let it run.
    static func failure(of operation: Operation, path: String) -> Int32? {
        guard let plan = active, plan.operation == operation else { return nil }
        let number = plan.calls.wrappingAdd(1, ordering: .relaxed).newValue
        guard number == plan.nth || (plan.persistent && number > plan.nth) else { return nil }
        Log.warning("fault injection: \(operation.rawValue) #\(number) (\(path)) fails with \(errnoName(plan.code))")
        return plan.code
    }

    private static func errnoName(_ code: Int32) -> String {
        code == ENOSPC ? "ENOSPC" : code == EIO ? "EIO" : code == EDQUOT ? "EDQUOT" : "errno \(code)"
    }
}
