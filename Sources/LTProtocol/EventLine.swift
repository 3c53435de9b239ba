#if canImport(Glibc)
import Glibc
#endif

/// The kinds of event a subscriber can filter on. Raw values index a bit mask.
public enum EventKind: UInt8, Sendable {
    case start = 0, state, step, epoch, end
}

/// Cheap looks into an encoded event line without parsing it: what the daemon needs to filter and recover its logs,
/// and what `ltctl tail --json` needs to pass lines through.
///
/// The encoders (`EventEncoder`, `EventEncoder.JobEncoder`) write every event as
/// `{"type":"…","job":"…","seq":N,…}` and a step as `…"seq":N,"epoch":E,"step":S,"iteration":I,…`; these helpers
/// rely on that order. When a line does not look that way they report nil, and a caller that must know parses it.
public enum EventLine {
    private static let typePrefix: StaticString = #"{"type":""#
    /// Where `seq` must appear: after the type (≤ 5 bytes) and a job name (≤ 64 bytes).
    private static let seqWindow = 160
    /// Where a step's `iteration` must appear: after seq, epoch and step (≤ 19 digits each).
    private static let iterationWindow = 240

    /// The event's `type`, e.g. "step", read from the line's start; nil if the line does not start with `{"type":"`.
    public static func type(of line: UnsafeRawBufferPointer) -> Substring? {
        let prefix = typePrefix.utf8CodeUnitCount
        guard line.count > prefix, starts(line, with: typePrefix) else { return nil }
        var i = prefix
        while i < line.count, line[i] != UInt8(ascii: "\"") { i += 1 }
        guard i < line.count else { return nil }
        return Substring(decoding: UnsafeRawBufferPointer(rebasing: line[prefix..<i]), as: UTF8.self)
    }

    /// The event's kind, from its `type`; nil for a line that is not one of ours.
    public static func kind(of line: UnsafeRawBufferPointer) -> EventKind? {
        switch type(of: line) {
        case "start": return .start
        case "state": return .state
        case "step": return .step
        case "epoch": return .epoch
        case "end": return .end
        default: return nil
        }
    }

    /// Whether the line is an `end` event (the last event of a job); nil if the line does not start with `{"type":"`.
    public static func isEnd(_ line: UnsafeRawBufferPointer) -> Bool? {
        guard let type = type(of: line) else { return nil }
        return type == "end"
    }

    /// The event's `seq`.
    public static func seq(of line: UnsafeRawBufferPointer) -> Int? {
        integer(after: #""seq":"#, in: line, within: seqWindow)
    }

    /// A step event's `iteration`.
    public static func iteration(of line: UnsafeRawBufferPointer) -> Int? {
        integer(after: #""iteration":"#, in: line, within: iterationWindow)
    }

    private static func starts(_ line: UnsafeRawBufferPointer, with prefix: StaticString) -> Bool {
        guard let base = line.baseAddress, line.count >= prefix.utf8CodeUnitCount else { return false }
        return memcmp(base, prefix.utf8Start, prefix.utf8CodeUnitCount) == 0
    }

    /// The decimal integer right after the first `key` that starts within the line's first `window` bytes.
    private static func integer(after key: StaticString, in line: UnsafeRawBufferPointer, within window: Int) -> Int? {
        let needle = key.utf8CodeUnitCount
        let searchable = min(line.count, window)
        guard let base = line.baseAddress, searchable >= needle else { return nil }
        var i = 0
        while i + needle <= searchable {
            guard let hit = memchr(base + i, Int32(UInt8(ascii: "\"")), searchable - needle - i + 1) else { return nil }
            let at = base.distance(to: UnsafeRawPointer(hit))
            if memcmp(base + at, key.utf8Start, needle) == 0 {
                var j = at + needle
                var value = 0
                var digits = 0
                while j < line.count, digits < 18, line[j] >= 0x30, line[j] <= 0x39 {
                    value = value * 10 + Int(line[j] - 0x30)
                    j += 1
                    digits += 1
                }
                return digits > 0 ? value : nil
            }
            i = at + 1
        }
        return nil
    }
}
