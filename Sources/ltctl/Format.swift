import Foundation
import LTClient
import LTProtocol

/// Number and text formatting shared by the human outputs.
enum Format {
    /// "1 epoch", "4 epochs".
    static func count(_ n: Int, _ noun: String) -> String { "\(n) \(noun)\(n == 1 ? "" : "s")" }

    /// `value` with `decimals` decimals, or scientific notation when it would be unreadably wide; the protocol's
    /// non-finite values print as NaN / Infinity.
    static func fixed(_ value: Double?, _ decimals: Int) -> String {
        guard let value else { return "-" }
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value > 0 ? "Infinity" : "-Infinity" }
        if abs(value) >= 1e9 { return String(format: "%.\(decimals)e", value) }
        return String(format: "%.\(decimals)f", value)
    }

    /// A wire number with `decimals` decimals. For a float32 job the text is first rounded to float32, so the exact
    /// float32 value is what gets rounded to `decimals` (its shortest text may round the other way at a tie).
    static func fixed(_ value: JSONValue?, _ decimals: Int, float32: Bool) -> String {
        guard let d = value?.doubleValue else { return "-" }
        return fixed(float32 ? exactFloat32(d) : d, decimals)
    }

    /// The float32 value a job computed, widened exactly to Double (values beyond float32's range stay as they are).
    static func exactFloat32(_ d: Double) -> Double {
        abs(d) <= Double(Float.greatestFiniteMagnitude) ? Double(Float(d)) : d
    }

    /// The daemon's exact number text (shortest round-trip in the job's precision), for "the truth" columns.
    static func exact(_ value: JSONValue?) -> String {
        switch value {
        case .number(let text)?: return text
        case .string(let s)?: return s
        case nil: return "-"
        case let other?: return other.serialized
        }
    }

    /// `text` broken between words into lines of at most `width` characters (a longer word stands alone), the first
    /// line after `first`, the others after `rest`; each line ends in a newline.
    static func wrapWords(_ text: String, width: Int, first: String = "", rest: String = "") -> String {
        var lines: [String] = []
        var line = ""
        for word in text.split(separator: " ") {
            let prefix = lines.isEmpty ? first : rest
            if !line.isEmpty && prefix.count + line.count + 1 + word.count > width { lines.append(line); line = "" }
            line += (line.isEmpty ? "" : " ") + word
        }
        if !line.isEmpty { lines.append(line) }
        return lines.enumerated().map { ($0.offset == 0 ? first : rest) + $0.element + "\n" }.joined()
    }

    /// A job's progress in percent, or "-" for a damaged job: ltd could not read it, so it has no steps to count
    /// (the daemon's `progress` of 1 for 0 of 0 steps is no 100%).
    static func progress(_ fraction: Double?, state: String?) -> String {
        guard state != JobState.damaged.rawValue, let fraction else { return "-" }
        return fixed(fraction * 100, 1) + "%"
    }

    /// A status object as --json prints it: a damaged job's `progress` is null, claiming nothing (see `progress`).
    static func statusJSON(_ status: JSONValue) -> JSONValue {
        guard status["state"]?.stringValue == JobState.damaged.rawValue, case .object(let members) = status else { return status }
        return .object(members.map { $0.key == "progress" ? ($0.key, .null) : $0 })
    }

    static func padLeft(_ s: String, _ width: Int) -> String {
        s.count >= width ? s : String(repeating: " ", count: width - s.count) + s
    }

    static func padRight(_ s: String, _ width: Int) -> String {
        s.count >= width ? s : s + String(repeating: " ", count: width - s.count)
    }

    /// The dataset rows of a step's batch: "0-3" for a contiguous ascending run, "11,10,9,7" otherwise
    /// (shortened after `limit` rows), from `indices` or `range`.
    static func rows(_ batch: JSONValue?, limit: Int = 8) -> String {
        guard let batch else { return "?" }
        if let range = batch["range"]?.arrayValue, range.count == 2,
           let first = range[0].intValue, let end = range[1].intValue {
            return end - first == 1 ? "\(first)" : "\(first)-\(end - 1)"
        }
        guard let indices = batch["indices"]?.arrayValue?.compactMap(\.intValue), !indices.isEmpty else { return "?" }
        if indices.count == 1 { return "\(indices[0])" }
        let contiguous = zip(indices, indices.dropFirst()).allSatisfy { $1 == $0 + 1 }
        if contiguous, let first = indices.first, let last = indices.last { return "\(first)-\(last)" }
        if indices.count <= limit { return indices.map(String.init).joined(separator: ",") }
        return indices.prefix(limit).map(String.init).joined(separator: ",") + ",… (\(indices.count) rows)"
    }

    /// The batch's row indices as a list (expanding `range`).
    static func rowIndices(_ batch: JSONValue?) -> [Int] {
        guard let batch else { return [] }
        if let range = batch["range"]?.arrayValue, range.count == 2,
           let first = range[0].intValue, let end = range[1].intValue, first <= end {
            return Array(first..<end)
        }
        return batch["indices"]?.arrayValue?.compactMap(\.intValue) ?? []
    }

    /// An error as the user reads it. The daemon names a job's owner as its own machine knows them; when it could
    /// give only the uid and this machine knows the name, the name is added.
    static func describe(_ error: ClientError) -> String {
        guard case .daemon("permission_denied", let message, _, let uid?) = error else { return error.description }
        let named = owner(uid)
        return named.hasPrefix("uid ") || message.contains(named) ? message : "\(message) (the owner is \(named))"
    }

    /// A uid as "name (uid)" when the name is known locally.
    static func owner(_ uid: Int?) -> String {
        guard let uid else { return "?" }
        guard let exact = UInt32(exactly: uid) else { return "uid \(uid)" }
        let name = getpwuid(exact).flatMap { entry in entry.pointee.pw_name.map { String(cString: $0) } }
        return ProcessIdentity.describe(uid: exact, user: name)
    }
}

/// ANSI colour, used only when the stream is a terminal and NO_COLOR is unset (https://no-color.org).
struct Palette {
    let enabled: Bool

    init(enabled: Bool) { self.enabled = enabled }

    init(fd: Int32) {
        let noColor = ProcessInfo.processInfo.environment["NO_COLOR"].map { !$0.isEmpty } ?? false
        enabled = isatty(fd) == 1 && !noColor
    }

    private func wrap(_ s: String, _ code: String) -> String { enabled ? "\u{1B}[\(code)m\(s)\u{1B}[0m" : s }
    func dim(_ s: String) -> String { wrap(s, "2") }
    func bold(_ s: String) -> String { wrap(s, "1") }
    func green(_ s: String) -> String { wrap(s, "32") }
    func yellow(_ s: String) -> String { wrap(s, "33") }
    func red(_ s: String) -> String { wrap(s, "31") }
    func cyan(_ s: String) -> String { wrap(s, "36") }

    func state(_ state: String) -> String {
        switch state {
        case "finished": return green(state)
        case "running": return cyan(state)
        case "paused", "cancelled": return yellow(state)
        case "diverged", "failed", "damaged": return red(state)
        default: return state
        }
    }
}

