/// Job names: `[A-Za-z0-9][A-Za-z0-9._-]{0,63}`. They become file names under the state directory, so the rule
/// also keeps `..`, `/` and hidden files out. Each user has their own names: a job's full name is `OWNER/NAME`.
public enum JobName {
    public static let rule = "a letter or digit, then up to 63 letters, digits, '.', '_' or '-'"

    public static func isValid(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard let first = bytes.first, bytes.count <= 64, isAlphanumeric(first) else { return false }
        return bytes.dropFirst().allSatisfy(isNameByte)
    }

    /// The full name of `name` owned by `owner` (a user name, or the uid's digits when it has none).
    public static func full(owner: String, name: String) -> String { owner + "/" + name }

    static func isNameByte(_ b: UInt8) -> Bool {
        isAlphanumeric(b) || b == UInt8(ascii: ".") || b == UInt8(ascii: "_") || b == UInt8(ascii: "-")
    }

    private static func isAlphanumeric(_ b: UInt8) -> Bool {
        (0x30...0x39).contains(b) || (0x41...0x5A).contains(b) || (0x61...0x7A).contains(b)
    }
}

/// A job as a request names it: `NAME`, one of the caller's own jobs, or `OWNER/NAME`, where OWNER is a user name
/// or a numeric uid (`alice/job1`, `1000/job1`).
public struct JobReference: Sendable, Equatable, CustomStringConvertible {
    /// The owner as written; nil for the caller's own job.
    public var owner: String?
    public var name: String

    public static let rule = "NAME (one of your jobs) or OWNER/NAME (OWNER a user name or uid), NAME being \(JobName.rule)"

    public init(owner: String?, name: String) { self.owner = owner; self.name = name }

    /// Parses `text`; nil when it is neither form.
    public init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 2, omittingEmptySubsequences: false)
        switch parts.count {
        case 1:
            guard JobName.isValid(text) else { return nil }
            self.init(owner: nil, name: text)
        case 2:
            let owner = String(parts[0]), name = String(parts[1])
            guard JobReference.isValidOwner(owner), JobName.isValid(name) else { return nil }
            self.init(owner: owner, name: name)
        default:
            return nil
        }
    }

    /// A user name as useradd accepts it (and no leading '.', '-'), or a uid: 1 to 32 of `[A-Za-z0-9._-]`.
    static func isValidOwner(_ owner: String) -> Bool {
        let bytes = Array(owner.utf8)
        guard let first = bytes.first, bytes.count <= 32, first != UInt8(ascii: "."), first != UInt8(ascii: "-")
        else { return false }
        return bytes.allSatisfy(JobName.isNameByte)
    }

    /// The owner as a uid when written as one (`1000/job1`).
    public var ownerUID: UInt32? { owner.flatMap { UInt32($0) } }

    public var description: String { owner.map { JobName.full(owner: $0, name: name) } ?? name }
}
