/// Durations as people type them on a command line: a whole number and a unit, `30s`, `30m`, `12h`, `14d` (a bare
/// number is seconds). Shared by `ltd --keep-finished` and `ltctl prune --older-than`.
public enum DurationText {
    private static let units: [(suffix: Character, seconds: Int)] = [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)]

    /// How `seconds(_:)` reads a duration, for error messages.
    public static let rule = "a whole number with a unit: s, m, h or d (e.g. 30m, 12h, 14d)"

    /// The number of seconds `text` names, or nil when it is not a duration (or more than 100 years).
    public static func seconds(_ text: String) -> Int? {
        guard let last = text.last else { return nil }
        let unit = units.first { $0.suffix == last }
        let digits = unit == nil ? Substring(text) : text.dropLast()
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }), digits.count <= 12,
              let count = Int(digits) else { return nil }
        let (total, overflow) = count.multipliedReportingOverflow(by: unit?.seconds ?? 1)
        guard !overflow, total <= 100 * 366 * 86_400 else { return nil }
        return total
    }

    /// `seconds` in the largest unit that divides it, e.g. 1209600 → `14d`, 90 → `90s`.
    public static func describe(_ seconds: Int) -> String {
        guard seconds > 0 else { return "0s" }
        let unit = units.first { seconds % $0.seconds == 0 } ?? ("s", 1)
        return "\(seconds / unit.seconds)\(unit.suffix)"
    }
}
