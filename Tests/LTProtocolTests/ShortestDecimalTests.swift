import Testing
@testable import LTProtocol

/// ShortestDecimal must spell every value exactly as the stdlib's `description` does, and its text must parse back
/// to the same bits.
@Suite struct ShortestDecimalTests {
    /// The bytes `append` (the writer's path) produces.
    static func bytes(_ f: Float) -> [UInt8] {
        var out: [UInt8] = [0x20]
        ShortestDecimal.append(f, to: &out)
        return Array(out.dropFirst())
    }

    static func bytes(_ d: Double) -> [UInt8] {
        var out: [UInt8] = [0x20]
        ShortestDecimal.append(d, to: &out)
        return Array(out.dropFirst())
    }

    /// Compares `write` with `description` through one scratch buffer (cheap enough for millions of values in a
    /// debug build); `roundTrip` also parses the text back.
    struct Checker: ~Copyable {
        let scratch = UnsafeMutablePointer<UInt8>.allocate(capacity: ShortestDecimal.maxLength)
        var problems: [String] = []
        deinit { scratch.deallocate() }

        func same(_ n: Int, _ description: String) -> Bool {
            var text = description
            return text.withUTF8 { utf8 in
                guard utf8.count == n else { return false }
                for k in 0..<n where utf8[k] != scratch[k] { return false }
                return true
            }
        }

        var text: (Int) -> String {
            { [scratch] n in String(decoding: UnsafeBufferPointer(start: scratch, count: n), as: UTF8.self) }
        }

        mutating func check(_ f: Float, roundTrip: Bool = true) {
            let n = ShortestDecimal.write(f, to: scratch)
            if !same(n, f.description) {
                problems.append("Float 0x\(String(f.bitPattern, radix: 16)): \(f.description) vs ours \(text(n))")
            } else if roundTrip && f.isFinite && Float(text(n))?.bitPattern != f.bitPattern {
                problems.append("Float 0x\(String(f.bitPattern, radix: 16)) does not round-trip")
            }
        }

        mutating func check(_ d: Double, roundTrip: Bool = true) {
            let n = ShortestDecimal.write(d, to: scratch)
            if !same(n, d.description) {
                problems.append("Double 0x\(String(d.bitPattern, radix: 16)): \(d.description) vs ours \(text(n))")
            } else if roundTrip && d.isFinite && Double(text(n))?.bitPattern != d.bitPattern {
                problems.append("Double 0x\(String(d.bitPattern, radix: 16)) does not round-trip")
            }
        }

        var summary: String { "\(problems.count) problems, first: \(problems.prefix(5))" }
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

    @Test func floatEdgeCasesMatchDescription() {
        let cases = Self.floatEdgeCases
        #expect(cases.count > 10_000)
        var checker = Checker()
        for v in cases { checker.check(v) }
        #expect(checker.problems.count == 0, "\(checker.summary)")
    }

    @Test func doubleEdgeCasesMatchDescription() {
        let cases = Self.doubleEdgeCases
        #expect(cases.count > 20_000)
        var checker = Checker()
        for v in cases { checker.check(v) }
        #expect(checker.problems.count == 0, "\(checker.summary)")
    }

    /// SplitMix64: deterministic bit patterns.
    struct Bits {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    /// 4 × 500,000 random bit patterns per type (split so the runner can use both cores).
    static let randomBatches = 4, randomPerBatch = 500_000

    @Test(arguments: 0..<randomBatches)
    func randomFloatBitPatterns(batch: Int) {
        var bits = Bits(state: 0xF10A_7000 &+ UInt64(batch))
        var checker = Checker()
        for k in 0..<Self.randomPerBatch {
            // Equal to description already implies the round trip; parse a sample to check that independently.
            checker.check(Float(bitPattern: UInt32(truncatingIfNeeded: bits.next() >> 32)), roundTrip: k % 8 == 0)
        }
        #expect(checker.problems.count == 0, "\(checker.summary)")
    }

    @Test(arguments: 0..<randomBatches)
    func randomDoubleBitPatterns(batch: Int) {
        var bits = Bits(state: 0xD0_0B1E_0000 &+ UInt64(batch))
        var checker = Checker()
        for k in 0..<Self.randomPerBatch {
            checker.check(Double(bitPattern: bits.next()), roundTrip: k % 8 == 0)
        }
        #expect(checker.problems.count == 0, "\(checker.summary)")
    }

    /// Values a training job actually produces: float32 results widened to Double, and doubles of modest magnitude.
    @Test func randomModestMagnitudes() {
        var bits = Bits(state: 42)
        var checker = Checker()
        for _ in 0..<200_000 {
            let unit = Double(bits.next() >> 11) / Double(1 << 53)
            let scale = Double(sign: .plus, exponent: Int(bits.next() % 60) - 30, significand: 1)
            let d = (unit - 0.5) * scale
            checker.check(d)
            checker.check(Float(d))
            checker.check(Double(Float(d)))
        }
        #expect(checker.problems.count == 0, "\(checker.summary)")
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
