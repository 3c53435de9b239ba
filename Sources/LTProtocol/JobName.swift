/// Job names: `[A-Za-z0-9][A-Za-z0-9._-]{0,63}`. They become file names under the state directory, so the rule
/// also keeps `..`, `/` and hidden files out.
public enum JobName {
    public static let rule = "a letter or digit, then up to 63 letters, digits, '.', '_' or '-'"

    public static func isValid(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard let first = bytes.first, bytes.count <= 64, isAlphanumeric(first) else { return false }
        return bytes.dropFirst().allSatisfy { isAlphanumeric($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") }
    }

    private static func isAlphanumeric(_ b: UInt8) -> Bool {
        (0x30...0x39).contains(b) || (0x41...0x5A).contains(b) || (0x61...0x7A).contains(b)
    }
}
