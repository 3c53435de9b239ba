#if canImport(Glibc)
import Glibc
#endif

/// Cheap looks into a raw event line without parsing it, for the `tail --json` fast path.
///
/// ltd writes every event as `{"type":"…","job":"…","seq":N,…}` (type first, then job, then seq). These helpers
/// rely on that order only as a fast path: when a line does not start that way they report nil, and the caller
/// parses the line instead.
public enum EventLine {
    private static let typePrefix = Array(#"{"type":""#.utf8)
    private static let seqKey = Array(#""seq":"#.utf8)

    /// The event's `type`, e.g. "step", read from the line's start; nil if the line does not start with `{"type":"`.
    public static func type(of line: UnsafeRawBufferPointer) -> Substring? {
        guard line.count > typePrefix.count, line.starts(with: typePrefix) else { return nil }
        var i = typePrefix.count
        while i < line.count, line[i] != UInt8(ascii: "\"") { i += 1 }
        guard i < line.count else { return nil }
        return Substring(decoding: UnsafeRawBufferPointer(rebasing: line[typePrefix.count..<i]), as: UTF8.self)
    }

    /// Whether the line is an `end` event (the last event of a job).
    public static func isEnd(_ line: UnsafeRawBufferPointer) -> Bool? {
        guard line.count > typePrefix.count, line.starts(with: typePrefix) else { return nil }
        let rest = UnsafeRawBufferPointer(rebasing: line[typePrefix.count...])
        return rest.starts(with: #"end""#.utf8)
    }

    /// The event's `seq`, found within the first 160 bytes (after type and a job name of at most 64 bytes).
    public static func seq(of line: UnsafeRawBufferPointer) -> Int? {
        let window = min(line.count, 160)
        guard window > seqKey.count else { return nil }
        var i = 0
        while i + seqKey.count <= window {
            if line[i] == UInt8(ascii: "\""), UnsafeRawBufferPointer(rebasing: line[i..<(i + seqKey.count)]).elementsEqual(seqKey) {
                var j = i + seqKey.count
                var value = 0
                var digits = 0
                while j < line.count, line[j] >= 0x30, line[j] <= 0x39, digits < 18 {
                    value = value * 10 + Int(line[j] - 0x30)
                    j += 1
                    digits += 1
                }
                return digits > 0 ? value : nil
            }
            i += 1
        }
        return nil
    }
}
