// Shortest round-trip decimal spelling of Float and Double, written as ASCII straight into a byte buffer.
//
// The digits and their layout are the standard library's `description`: the shortest digit string that parses back
// to the same value, exponential below 1e-4 and above 2^24 (Float) / 2^53 (Double). ltd once carried a hand-written
// Ryū (1,150 lines with its tables); `LTBench codec` measured the standard library within 10 % of it per step event,
// so it went (docs/BENCHMARKS.md, "Codec").

/// Float and Double to the bytes of their `description`.
public enum ShortestDecimal {
    /// Enough room for any finite value's spelling ("-2.2250738585072014e-308" is 24 bytes).
    public static let maxLength = 32

    /// Writes `value`'s description into `buffer` (at least `maxLength` bytes) and returns the byte count.
    @inline(__always)
    public static func write(_ value: Float, to buffer: UnsafeMutablePointer<UInt8>) -> Int {
        copy(value.description, to: buffer)
    }

    /// Writes `value`'s description into `buffer` (at least `maxLength` bytes) and returns the byte count.
    @inline(__always)
    public static func write(_ value: Double, to buffer: UnsafeMutablePointer<UInt8>) -> Int {
        copy(value.description, to: buffer)
    }

    @inline(__always)
    private static func copy(_ description: String, to buffer: UnsafeMutablePointer<UInt8>) -> Int {
        var text = description
        return text.withUTF8 { utf8 in
            let count = min(utf8.count, maxLength)
            if let source = utf8.baseAddress { buffer.initialize(from: source, count: count) }
            return count
        }
    }
}
