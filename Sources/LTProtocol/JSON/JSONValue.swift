/// A parsed JSON value. Numbers keep their source text, so integers beyond 2^53 (seeds) and doubles both read exactly.
/// Objects keep their members in order; lookups are linear, which is right for the small objects of this protocol.
public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case number(String)
    case string(String)
    case array([JSONValue])
    case object([(key: String, value: JSONValue)])

    public static func == (a: JSONValue, b: JSONValue) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case let (.bool(x), .bool(y)): return x == y
        case let (.number(x), .number(y)): return x == y
        case let (.string(x), .string(y)): return x == y
        case let (.array(x), .array(y)): return x == y
        case let (.object(x), .object(y)):
            return x.count == y.count && zip(x, y).allSatisfy { $0.key == $1.key && $0.value == $1.value }
        default: return false
        }
    }

    public subscript(key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        return members.first { $0.key == key }?.value
    }

    public var objectMembers: [(key: String, value: JSONValue)]? {
        if case .object(let m) = self { return m }
        return nil
    }
    public var arrayValue: [JSONValue]? {
        if case .array(let a) = self { return a }
        return nil
    }
    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }
    public var boolValue: Bool? {
        if case .bool(let b) = self { return b }
        return nil
    }
    public var isNull: Bool { if case .null = self { return true } else { return false } }

    /// A number as Double. The protocol's non-finite spellings "NaN", "Infinity", "-Infinity" are accepted too.
    public var doubleValue: Double? {
        switch self {
        case .number(let text): return Double(text)
        case .string("NaN"): return .nan
        case .string("Infinity"): return .infinity
        case .string("-Infinity"): return -.infinity
        default: return nil
        }
    }

    /// A number that is an exact integer within Int64 (written `7`, `7.0` or `7e0`), else nil.
    public var int64Value: Int64? {
        guard case .number(let text) = self else { return nil }
        if let v = Int64(text) { return v }
        guard let d = Double(text), d.rounded() == d, abs(d) < 9.0e18 else { return nil }
        return Int64(d)
    }
    public var intValue: Int? { int64Value.map { Int($0) } }

    /// A non-negative exact integer within UInt64 (seeds up to 2^64 - 1).
    public var uint64Value: UInt64? {
        guard case .number(let text) = self else { return nil }
        if let v = UInt64(text) { return v }
        guard let d = Double(text), d.rounded() == d, d >= 0, d < 1.8e19 else { return nil }
        return UInt64(d)
    }

    /// The JSON type name, for error messages ("expected a number, got a string").
    public var typeName: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .number: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }
}

extension JSONValue {
    public init(_ value: Double) { self = .number(JSONNumber.format(value)) }
    public init(_ value: Int) { self = .number(String(value)) }
    public init(_ value: String) { self = .string(value) }
    public init(_ value: Bool) { self = .bool(value) }
}
