import Testing
@testable import LTProtocol

/// ShortestDecimal writes the standard library's `description` into the encoders' buffers: the spellings the
/// protocol documents, and never more than `maxLength` bytes (the encoders bound their buffers with it).
@Suite struct ShortestDecimalTests {
    static func bytes(_ f: Float) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: ShortestDecimal.maxLength) { buffer, count in
            count = buffer.baseAddress.map { ShortestDecimal.write(f, to: $0) } ?? 0
        }
    }

    static func bytes(_ d: Double) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: ShortestDecimal.maxLength) { buffer, count in
            count = buffer.baseAddress.map { ShortestDecimal.write(d, to: $0) } ?? 0
        }
    }

    /// A value and its neighbours on both sides, both signs.
    static func around(_ f: Float, _ steps: Int = 3) -> [Float] {
        var out: [Float] = [f]
        var up = f, down = f
        for _ in 0..<steps { up = up.nextUp; down = down.nextDown; out += [up, down] }
        return out + out.map { -$0 }
    }

    static func around(_ d: Double, _ steps: Int = 3) -> [Double] {
        var out: [Double] = [d]
        var up = d, down = d
        for _ in 0..<steps { up = up.nextUp; down = down.nextDown; out += [up, down] }
        return out + out.map { -$0 }
    }

    static var floatEdgeCases: [Float] {
        var v: [Float] = [0, -0.0, 8.8, 5, 1e-7, 0.1, 0.2, 0.3, 1.0 / 3, 2.0 / 3, .pi, 100, 1e7, 1e8, 123456.7,
                          0.015625,
                          .leastNonzeroMagnitude, Float(bitPattern: 0x007F_FFFF), .leastNormalMagnitude,
                          .greatestFiniteMagnitude, .ulpOfOne, 1 + .ulpOfOne]
        for e in -149...127 { v += around(Float(sign: .plus, exponent: e, significand: 1), 2) }
        for k in -45...38 { if let p = Float("1e\(k)") { v += around(p, 2) } }
        // The fixed/exponential switch-overs: below 1e-4, and above 2^24.
        for text in ["1e-4", "1e-5", "9.999999e-5", "0.00010000001", "16777216", "16777215", "16777218", "33554432"] {
            if let p = Float(text) { v += around(p, 4) }
        }
        for i in 0...2_000 { v += [Float(i), Float(16_777_216 - i), Float(16_777_216 + 2 * i), Float(i) / 1000] }
        v += [.infinity, -.infinity, .nan, -.nan, .signalingNaN]
        return v
    }

    static var doubleEdgeCases: [Double] {
        var v: [Double] = [0, -0.0, 8.8, 5, 1e-7, 0.1, 0.2, 0.3, 0.1 + 0.2, 1.0 / 3, 2.0 / 3, .pi, 1e15, 1e16, 1e22,
                           1e23, 123456.7, .leastNonzeroMagnitude, Double(bitPattern: 0x000F_FFFF_FFFF_FFFF),
                           .leastNormalMagnitude, .greatestFiniteMagnitude, .ulpOfOne, 1 + .ulpOfOne]
        for e in -1074...1023 { v += around(Double(sign: .plus, exponent: e, significand: 1), 2) }
        for k in -324...308 { if let p = Double("1e\(k)") { v += around(p, 2) } }
        for text in ["1e-4", "1e-5", "9.999999999999999e-5", "0.00010000000000000002", "9007199254740992",
                     "9007199254740991", "9007199254740993", "9007199254740994", "18014398509481984",
                     "2.2250738585072011e-308"] {
            if let p = Double(text) { v += around(p, 4) }
        }
        for i in 0...2_000 {
            v += [Double(i), Double(9_007_199_254_740_992 - i), Double(9_007_199_254_740_992 + 2 * i), Double(i) / 1000]
        }
        // Every float32 edge case widened to double, as the writer does for float32 jobs' float64 fields.
        v += floatEdgeCases.map { Double($0) }
        v += [.infinity, -.infinity, .nan, -.nan, .signalingNaN]
        return v
    }

    @Test func knownSpellings() {
        let floats: [(Float, String)] = [
            (8.8, "8.8"), (5, "5.0"), (1e-7, "1e-07"), (16_777_216, "16777216.0"), (16_777_218, "1.6777218e+07"),
            (-0.0, "-0.0"), (0, "0.0"), (.greatestFiniteMagnitude, "3.4028235e+38"), (.leastNonzeroMagnitude, "1e-45"),
            (0.0001, "0.0001"), (0.00001, "1e-05"), (0.1, "0.1"), (-1.5, "-1.5"), (1e7, "10000000.0"),
        ]
        for (f, text) in floats { #expect(String(decoding: Self.bytes(f), as: UTF8.self) == text) }
        let doubles: [(Double, String)] = [
            (8.8, "8.8"), (5, "5.0"), (1e-7, "1e-07"), (.leastNonzeroMagnitude, "5e-324"), (-0.0, "-0.0"),
            (0.1 + 0.2, "0.30000000000000004"),
            (9_007_199_254_740_992, "9007199254740992.0"), (9_007_199_254_740_994, "9.007199254740994e+15"),
            (1e16, "1e+16"), (.greatestFiniteMagnitude, "1.7976931348623157e+308"), (1e-100, "1e-100"),
            (Double(Float(8.8)), "8.800000190734863"),
        ]
        for (d, text) in doubles { #expect(String(decoding: Self.bytes(d), as: UTF8.self) == text) }
    }

    /// Every edge case's spelling is written whole: within `maxLength`, and byte for byte its description.
    @Test func edgeCasesFitAndAreWrittenWhole() {
        let floats = Self.floatEdgeCases.filter(\.isFinite)
        let doubles = Self.doubleEdgeCases.filter(\.isFinite)
        #expect(floats.count > 10_000 && doubles.count > 20_000)
        var longest = 0
        for f in floats {
            longest = max(longest, f.description.utf8.count)
            if !Self.bytes(f).elementsEqual(f.description.utf8) { Issue.record("Float \(f) written as \(Self.bytes(f))"); break }
        }
        for d in doubles {
            longest = max(longest, d.description.utf8.count)
            if !Self.bytes(d).elementsEqual(d.description.utf8) { Issue.record("Double \(d) written as \(Self.bytes(d))"); break }
        }
        #expect(longest == 24, "the longest spelling is -2.2250738585072014e-308 and its like")
        #expect(longest <= ShortestDecimal.maxLength)
    }

    /// The writer spells numbers in the job's precision through ShortestDecimal.
    @Test func writerUsesDescriptionSpelling() {
        for d in [8.8, 0.1, -1e-7, 1e300, 16_777_217, 123.456] {
            var w32 = JSONWriter(precision: .float32)
            w32.number(d)
            #expect(w32.bytes.elementsEqual(Float(d).isFinite ? Float(d).description.utf8 : "\"Infinity\"".utf8))
            var w64 = JSONWriter(precision: .float64)
            w64.number(d)
            #expect(w64.bytes.elementsEqual(d.description.utf8))
            #expect(JSONNumber.format(d) == d.description)
        }
    }

    /// The writer's in-place buffer grows past its initial capacity and is not shared between copies.
    @Test func writerBufferGrowsAndCopiesOnWrite() {
        var w = JSONWriter(precision: .float32, capacity: 1)
        var expected = "["
        w.beginArray()
        for i in 0..<5_000 {
            let v = Double(i) * 0.37 - 11
            w.number(v)
            expected += (i == 0 ? "" : ",") + Float(v).description
        }
        var copy = w
        w.endArray()
        expected += "]"
        #expect(String(decoding: w.bytes, as: UTF8.self) == expected)
        copy.integer(-42)
        #expect(String(decoding: w.bytes, as: UTF8.self) == expected)
        #expect(String(decoding: copy.bytes, as: UTF8.self) == String(expected.dropLast()) + ",-42")
    }
}
