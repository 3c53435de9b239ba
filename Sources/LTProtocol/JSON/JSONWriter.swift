import LTEngine

/// Number spelling on the wire: the shortest decimal that round-trips to the exact value in the job's precision,
/// and the strings "NaN", "Infinity", "-Infinity" for what JSON cannot spell.
public enum JSONNumber {
    public static func format(_ value: Double, precision: Precision = .float64) -> String {
        switch precision {
        case .float32:
            // Round first: a finite double beyond float32's range is infinite as float32 (and Float.description
            // would spell it "inf", which is not JSON).
            let f = Float(value)
            guard f.isFinite else { return nonFinite(f.isNaN, f > 0) }
            return ShortestDecimal.string(f)
        case .float64:
            guard value.isFinite else { return nonFinite(value.isNaN, value > 0) }
            return ShortestDecimal.string(value)
        }
    }

    private static func nonFinite(_ isNaN: Bool, _ positive: Bool) -> String {
        isNaN ? "\"NaN\"" : (positive ? "\"Infinity\"" : "\"-Infinity\"")
    }
}

/// Appends compact JSON to a byte buffer, placing commas itself. Used for every event, so it avoids Foundation
/// and intermediate strings: one event is encoded once into one buffer and shared by every subscriber.
public struct JSONWriter: Sendable {
    /// The JSON written so far (a copy of the writer's buffer).
    public var bytes: [UInt8] { out.array }
    public var precision: Precision
    private var needsComma = false
    private var out: Output

    public init(precision: Precision = .float64, capacity: Int = 512) {
        self.precision = precision
        out = Output(capacity: capacity)
    }

    private mutating func separate() {
        if needsComma { out.append(UInt8(ascii: ",")) }
        needsComma = true
    }

    public mutating func beginObject() { separate(); out.append(UInt8(ascii: "{")); needsComma = false }
    public mutating func endObject() { out.append(UInt8(ascii: "}")); needsComma = true }
    public mutating func beginArray() { separate(); out.append(UInt8(ascii: "[")); needsComma = false }
    public mutating func endArray() { out.append(UInt8(ascii: "]")); needsComma = true }

    /// An object key; the next value call writes its value.
    public mutating func key(_ name: StaticString) {
        let comma = needsComma
        needsComma = false
        // `,"name":` as one token.
        name.withUTF8Buffer { utf8 in
            out.write(max: utf8.count &+ 4) { p in
                var i = 0
                if comma { p[0] = UInt8(ascii: ","); i = 1 }
                p[i] = UInt8(ascii: "\"")
                i &+= 1
                if let source = utf8.baseAddress { (p + i).initialize(from: source, count: utf8.count) }
                i &+= utf8.count
                p[i] = UInt8(ascii: "\"")
                p[i + 1] = UInt8(ascii: ":")
                return i &+ 2
            }
        }
    }

    public mutating func key(_ name: String) {
        separate()
        appendEscaped(name)
        out.append(UInt8(ascii: ":"))
        needsComma = false
    }

    public mutating func string(_ value: String) { separate(); appendEscaped(value) }

    public mutating func number(_ value: Double) { number(value, precision: precision) }

    /// A number in the given precision, whatever the writer's.
    public mutating func number(_ value: Double, precision: Precision) {
        // The stdlib's shortest round-trip spelling (byte-identical to `description`), separator and digits
        // written as one token.
        switch precision {
        case .float32:
            let f = Float(value)
            guard f.isFinite else { separate(); appendNonFinite(f.isNaN, f > 0); return }
            let comma = needsComma
            needsComma = true
            out.write(max: 1 &+ ShortestDecimal.maxLength) { p in
                if comma { p[0] = UInt8(ascii: ",") }
                let start = comma ? 1 : 0
                return start &+ ShortestDecimal.write(f, to: p + start)
            }
        case .float64:
            guard value.isFinite else { separate(); appendNonFinite(value.isNaN, value > 0); return }
            let comma = needsComma
            needsComma = true
            out.write(max: 1 &+ ShortestDecimal.maxLength) { p in
                if comma { p[0] = UInt8(ascii: ",") }
                let start = comma ? 1 : 0
                return start &+ ShortestDecimal.write(value, to: p + start)
            }
        }
    }

    private mutating func appendNonFinite(_ isNaN: Bool, _ positive: Bool) {
        let text: StaticString = isNaN ? "\"NaN\"" : (positive ? "\"Infinity\"" : "\"-Infinity\"")
        text.withUTF8Buffer { out.append(contentsOf: $0) }
    }

    /// Separator, sign and decimal digits as one token, without an intermediate String.
    private mutating func appendDecimal(_ magnitude: UInt64, negative: Bool) {
        let comma = needsComma
        needsComma = true
        var digits = 1
        var rest = magnitude
        while rest >= 10 { rest /= 10; digits &+= 1 }
        out.write(max: 22) { p in
            // Comma and sign, then the digits right to left.
            var i = 0
            if comma { p[0] = UInt8(ascii: ","); i = 1 }
            if negative { p[i] = UInt8(ascii: "-"); i &+= 1 }
            var v = magnitude
            var k = i &+ digits
            repeat {
                k &-= 1
                p[k] = 0x30 &+ UInt8(truncatingIfNeeded: v % 10)
                v /= 10
            } while v > 0
            return i &+ digits
        }
    }

    /// A string known to need no escaping.
    public mutating func rawString(_ value: StaticString) {
        separate()
        out.append(UInt8(ascii: "\""))
        value.withUTF8Buffer { out.append(contentsOf: $0) }
        out.append(UInt8(ascii: "\""))
    }

    public mutating func integer(_ value: Int) { appendDecimal(value.magnitude.toUInt64, negative: value < 0) }
    public mutating func integer(_ value: UInt64) { appendDecimal(value, negative: false) }
    public mutating func bool(_ value: Bool) { separate(); out.append(contentsOf: (value ? "true" : "false").utf8) }
    public mutating func null() { separate(); out.append(contentsOf: "null".utf8) }

    public mutating func field(_ name: StaticString, _ value: Double) { key(name); number(value) }
    public mutating func field(_ name: StaticString, _ value: Int) { key(name); integer(value) }
    public mutating func field(_ name: StaticString, _ value: String) { key(name); string(value) }
    public mutating func field(_ name: StaticString, _ value: Bool) { key(name); bool(value) }

    public mutating func numbers(_ values: some Sequence<Double>) {
        beginArray()
        for v in values { number(v) }
        endArray()
    }

    public mutating func integers(_ values: some Sequence<Int>) {
        beginArray()
        for v in values { integer(v) }
        endArray()
    }

    /// Writes any parsed value back out (numbers keep their source text).
    public mutating func value(_ v: JSONValue) {
        switch v {
        case .null: null()
        case .bool(let b): bool(b)
        case .number(let text): separate(); out.append(contentsOf: text.utf8)
        case .string(let s): string(s)
        case .array(let a):
            beginArray(); for e in a { value(e) }; endArray()
        case .object(let members):
            beginObject(); for m in members { key(m.key); value(m.value) }; endObject()
        }
    }

    public mutating func newline() { out.append(0x0A); needsComma = false }

    private mutating func appendEscaped(_ s: String) {
        out.append(UInt8(ascii: "\""))
        var s = s
        // Fast path: most strings (job names, keys, states) need no escaping.
        let plain = s.withUTF8 { utf8 in
            guard utf8.allSatisfy({ $0 >= 0x20 && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") }) else { return false }
            out.append(contentsOf: utf8)
            return true
        }
        if plain { out.append(UInt8(ascii: "\"")); return }
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "\""): out.append(contentsOf: [0x5C, 0x22])
            case UInt8(ascii: "\\"): out.append(contentsOf: [0x5C, 0x5C])
            case 0x0A: out.append(contentsOf: [0x5C, UInt8(ascii: "n")])
            case 0x0D: out.append(contentsOf: [0x5C, UInt8(ascii: "r")])
            case 0x09: out.append(contentsOf: [0x5C, UInt8(ascii: "t")])
            case 0x00..<0x20:
                let hex: [UInt8] = Array("0123456789abcdef".utf8)
                out.append(contentsOf: [0x5C, UInt8(ascii: "u"), 0x30, 0x30, hex[Int(b >> 4)], hex[Int(b & 0xF)]])
            default: out.append(b)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}

extension UInt {
    fileprivate var toUInt64: UInt64 { UInt64(truncatingIfNeeded: self) }
}

extension JSONWriter {
    /// The writer's bytes: one growable allocation that tokens are written into in place (no scratch copies, no
    /// per-token memmove), copied on write like an Array so a copied writer never shares it.
    struct Output: @unchecked Sendable {  // unchecked: the buffer is only written when uniquely referenced
        struct Fill { var count: Int; var capacity: Int }
        private var buffer: ManagedBuffer<Fill, UInt8>

        init(capacity: Int) {
            let capacity = max(capacity, 16)
            buffer = .create(minimumCapacity: capacity) { _ in Fill(count: 0, capacity: capacity) }
        }

        var array: [UInt8] {
            buffer.withUnsafeMutablePointers { fill, base in
                Array(UnsafeBufferPointer(start: base, count: fill.pointee.count))
            }
        }

        /// Lets `body` write at most `max` bytes at the end and keeps the count it returns.
        @inline(__always)
        mutating func write(max: Int, _ body: (UnsafeMutablePointer<UInt8>) -> Int) {
            // Header through its pointer: `buffer.header` is a class property, checked for exclusivity at run time.
            let room = buffer.withUnsafeMutablePointerToHeader { $0.pointee.capacity &- $0.pointee.count }
            if room < max || !isKnownUniquelyReferenced(&buffer) { grow(max) }
            buffer.withUnsafeMutablePointers { fill, base in
                let written = body(base + fill.pointee.count)
                fill.pointee.count &+= written
            }
        }

        /// A private buffer with room for `extra` more bytes.
        private mutating func grow(_ extra: Int) {
            let fill = buffer.withUnsafeMutablePointerToHeader { $0.pointee }
            let count = fill.count
            let capacity = Swift.max(fill.capacity * 2, count + extra)
            let grown = ManagedBuffer<Fill, UInt8>.create(minimumCapacity: capacity) { _ in
                Fill(count: count, capacity: capacity)
            }
            buffer.withUnsafeMutablePointerToElements { old in
                grown.withUnsafeMutablePointerToElements { new in new.initialize(from: old, count: count) }
            }
            buffer = grown
        }

        @inline(__always)
        mutating func append(_ byte: UInt8) { write(max: 1) { $0[0] = byte; return 1 } }

        mutating func append(contentsOf bytes: UnsafeBufferPointer<UInt8>) {
            guard let source = bytes.baseAddress else { return }
            write(max: bytes.count) { $0.initialize(from: source, count: bytes.count); return bytes.count }
        }

        mutating func append(contentsOf bytes: some Collection<UInt8>) {
            write(max: bytes.count) { p in
                var i = 0
                for b in bytes { p[i] = b; i &+= 1 }
                return i
            }
        }
    }
}

extension JSONValue {
    /// Compact JSON text of this value.
    public var serialized: String {
        var w = JSONWriter()
        w.value(self)
        return String(decoding: w.bytes, as: UTF8.self)
    }
}
