import Testing
@testable import LTProtocol
import LTEngine

@Suite struct JSONParserTests {
    @Test(arguments: [
        "null", "true", "false", "0", "-0", "1.5", "-1.25e-3", "1E+2", "\"\"", "\"a\\\"b\\\\c\\/\\b\\f\\n\\r\\t\"",
        "\"\\u00e9\\ud83d\\ude00\"", "[]", "{}", "[1,[2,[3]]]", "{\"a\":{\"b\":[true,null]}}", " \t\r\n{ \"k\" : 1 } \n",
        "\"é😀\"", "123456789012345678901234567890",
    ])
    func acceptsValidJSON(_ text: String) throws {
        _ = try JSONParser.parse(text)
    }

    @Test(arguments: [
        "", " ", "nul", "tru", "[1,]", "{\"a\":1,}", "[1 2]", "{\"a\" 1}", "{1:2}", "01", "1.", ".5", "-", "1e", "1e+",
        "+1", "NaN", "Infinity", "\"abc", "\"a\\x\"", "\"\\u12\"", "\"\\u12g4\"", "[", "{", "]", "}", "1 2", "{\"a\":1}x",
        "\"tab\there\"", "'single'", "[1,,2]",
    ])
    func rejectsInvalidJSON(_ text: String) {
        #expect(throws: JSONParser.Failure.self) { try JSONParser.parse(text) }
    }

    @Test func decodesEscapes() throws {
        let v = try JSONParser.parse("\"a\\\"b\\\\c\\/\\n\\u00e9\\ud83d\\ude00\"")
        #expect(v == .string("a\"b\\c/\né😀"))
    }

    @Test(arguments: [
        [0x22, 0xC0, 0x80, 0x22],             // overlong NUL
        [0x22, 0xC1, 0xBF, 0x22],             // overlong
        [0x22, 0xE0, 0x80, 0x80, 0x22],       // overlong 3-byte
        [0x22, 0xED, 0xA0, 0x80, 0x22],       // UTF-16 surrogate encoded in UTF-8
        [0x22, 0xF4, 0x90, 0x80, 0x80, 0x22], // beyond U+10FFFF
        [0x22, 0xFF, 0x22],                   // never valid
        [0x22, 0x80, 0x22],                   // lone continuation byte
        [0x22, 0xE2, 0x82, 0x22],             // truncated sequence
        [0x22, 0xF0, 0x9F, 0x98],             // truncated at end of input
    ] as [[UInt8]])
    func rejectsInvalidUTF8(_ bytes: [UInt8]) {
        #expect(throws: JSONParser.Failure.self) { try JSONParser.parse(bytes) }
    }

    @Test func rejectsInvalidUTF8OutsideStrings() {
        #expect(throws: JSONParser.Failure.self) { try JSONParser.parse([0xEF, 0xBB, 0xBF, 0x7B, 0x7D] as [UInt8]) } // BOM
        #expect(throws: JSONParser.Failure.self) { try JSONParser.parse([0x7B, 0xFF, 0x7D] as [UInt8]) }
    }

    @Test(arguments: ["\"\\ud800\"", "\"\\udc00\"", "\"\\ud800\\u0041\"", "\"\\ud800x\"", "\"\\udbff\\ud800\"", "\"\\ud800\\\""])
    func rejectsLoneSurrogates(_ text: String) {
        #expect(throws: JSONParser.Failure.self) { try JSONParser.parse(text) }
    }

    @Test func deepNestingFailsWithoutOverflowingTheStack() {
        for (open, close) in [("[", "]"), ("{\"a\":", "}")] {
            let text = String(repeating: open, count: 10_000) + "1" + String(repeating: close, count: 10_000)
            #expect(throws: JSONParser.Failure.self) { try JSONParser.parse(text) }
            // Unterminated too: a hostile line never closes.
            #expect(throws: JSONParser.Failure.self) { try JSONParser.parse(String(repeating: open, count: 100_000)) }
        }
    }

    @Test func nestingLimitIsExact() throws {
        let limit = JSONParser.defaultMaxDepth
        _ = try JSONParser.parse(String(repeating: "[", count: limit) + String(repeating: "]", count: limit))
        #expect(throws: JSONParser.Failure.self) {
            try JSONParser.parse(String(repeating: "[", count: limit + 1) + String(repeating: "]", count: limit + 1))
        }
    }

    @Test func rejectsDuplicateKeys() throws {
        #expect(throws: JSONParser.Failure.self) { try JSONParser.parse("{\"a\":1,\"a\":2}") }
        #expect(throws: JSONParser.Failure.self) { try JSONParser.parse("{\"a\":{\"b\":1,\"b\":1}}") }
        // Past the linear-scan threshold the set takes over; duplicates are still found, early and late.
        let many = (0..<100).map { "\"k\($0)\":\($0)" }.joined(separator: ",")
        _ = try JSONParser.parse("{\(many)}")
        #expect(throws: JSONParser.Failure.self) { try JSONParser.parse("{\(many),\"k3\":0}") }
        #expect(throws: JSONParser.Failure.self) { try JSONParser.parse("{\(many),\"k99\":0}") }
        #expect(throws: JSONParser.Failure.self) { try JSONParser.parse("{\(many),\"x\":1,\"x\":2}") }
        // Around the threshold itself.
        for n in 14...18 {
            let keys = (0..<n).map { "\"k\($0)\":0" }.joined(separator: ",")
            for dup in [0, n - 1] {
                #expect(throws: JSONParser.Failure.self) { try JSONParser.parse("{\(keys),\"k\(dup)\":1}") }
            }
        }
        // Keys equal only after unescaping are duplicates too.
        #expect(throws: JSONParser.Failure.self) { try JSONParser.parse("{\"a\":1,\"\\u0061\":2}") }
    }

    @Test func bigIntegersReadExactly() throws {
        #expect(try JSONParser.parse("18446744073709551615").uint64Value == UInt64.max)
        #expect(try JSONParser.parse("18446744073709551616").uint64Value == nil)
        #expect(try JSONParser.parse("9223372036854775807").int64Value == Int64.max)
        #expect(try JSONParser.parse("-9223372036854775808").int64Value == Int64.min)
        #expect(try JSONParser.parse("9223372036854775808").int64Value == nil)
        #expect(try JSONParser.parse("1e300").intValue == nil)
        #expect(try JSONParser.parse("1e400").intValue == nil)
        #expect(try JSONParser.parse("-1").uint64Value == nil)
        #expect(try JSONParser.parse("7.0").intValue == 7)
        #expect(try JSONParser.parse("7e0").intValue == 7)
        #expect(try JSONParser.parse("7.5").intValue == nil)
        #expect(try JSONParser.parse("1e400").doubleValue == .infinity)
        let long = String(repeating: "9", count: 500)
        #expect(throws: JSONParser.Failure.self) { try JSONParser.parse(long) }
    }

    @Test func writerRoundTripsParsedValues() throws {
        let text = "{\"a\":[1,2.5,-3e-7,\"x\\ny\\u0001\\\"\",true,false,null],\"b\":{\"c\":18446744073709551615}}"
        let v = try JSONParser.parse(text)
        #expect(try JSONParser.parse(v.serialized) == v)
    }

    @Test func largeObjectsParseInLinearTime() throws {
        // 200k distinct keys: quadratic duplicate checks would take minutes.
        let many = (0..<200_000).map { "\"k\($0)\":0" }.joined(separator: ",")
        let v = try JSONParser.parse("{\(many)}")
        #expect(v.objectMembers?.count == 200_000)
    }
}

@Suite struct NumberFormatTests {
    @Test func randomFloatsRoundTripBitExactly() throws {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<50_000 {
            let f = Float(bitPattern: UInt32.random(in: .min ... .max, using: &rng))
            guard f.isFinite else { continue }
            let text = JSONNumber.format(Double(f), precision: .float32)
            let parsed = try JSONParser.parse(text)      // valid JSON
            let d = try #require(parsed.doubleValue)
            #expect(Float(d).bitPattern == f.bitPattern, "\(f) -> \(text)")
        }
    }

    @Test func randomDoublesRoundTripBitExactly() throws {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<50_000 {
            let x = Double(bitPattern: UInt64.random(in: .min ... .max, using: &rng))
            guard x.isFinite else { continue }
            let text = JSONNumber.format(x, precision: .float64)
            let d = try #require(try JSONParser.parse(text).doubleValue)
            #expect(d.bitPattern == x.bitPattern, "\(x) -> \(text)")
        }
    }

    @Test func writerNumbersAndIntegersRoundTrip() throws {
        var rng = SystemRandomNumberGenerator()
        var floats: [Double] = [0, -0.0, .nan, .infinity, -.infinity, 1e300]
        var doubles: [Double] = [0, -0.0, .nan, .infinity, -.infinity]
        var ints: [Int] = [0, 1, 9, 10, -1, -10, Int.max, Int.min, 1234567890]
        for _ in 0..<5_000 {
            floats.append(Double(Float(bitPattern: UInt32.random(in: .min ... .max, using: &rng))))
            doubles.append(Double(bitPattern: UInt64.random(in: .min ... .max, using: &rng)))
            ints.append(Int.random(in: .min ... .max, using: &rng))
        }
        var w32 = JSONWriter(precision: .float32), w64 = JSONWriter(precision: .float64), wi = JSONWriter()
        w32.numbers(floats); w64.numbers(doubles); wi.integers(ints)
        let f = try #require(try JSONParser.parse(w32.bytes).arrayValue)
        let d = try #require(try JSONParser.parse(w64.bytes).arrayValue)
        for (x, v) in zip(floats, f) {
            let back = try #require(v.doubleValue)
            #expect(Float(back).bitPattern == Float(x).bitPattern || (x.isNaN && back.isNaN), "\(x)")
        }
        for (x, v) in zip(doubles, d) {
            let back = try #require(v.doubleValue)
            #expect(back.bitPattern == x.bitPattern || (x.isNaN && back.isNaN), "\(x)")
        }
        let parsedInts = try #require(try JSONParser.parse(wi.bytes).arrayValue).map(\.int64Value)
        #expect(parsedInts == ints.map { Int64($0) })
        var wu = JSONWriter()
        wu.integer(UInt64.max)
        #expect(String(decoding: wu.bytes, as: UTF8.self) == "18446744073709551615")
    }

    @Test func writerEscapesStrings() throws {
        for text in ["plain", "", "quote\"", "back\\slash", "nl\n", "\u{1}\u{1f}", "é😀", "a\u{7f}b"] {
            var w = JSONWriter()
            w.string(text)
            #expect(try JSONParser.parse(w.bytes) == .string(text))
        }
    }

    @Test func float32IsShortest() {
        #expect(JSONNumber.format(Double(Float(8.8)), precision: .float32) == "8.8")
        #expect(JSONNumber.format(Double(Float(0.05)), precision: .float32) == "0.05")
        #expect(JSONNumber.format(1e-7, precision: .float32) == "1e-07")
        #expect(JSONNumber.format(Double(Float(8.8)), precision: .float64) == "8.800000190734863")
    }

    @Test func nonFiniteValuesAreStrings() throws {
        for p in [Precision.float32, .float64] {
            #expect(JSONNumber.format(.nan, precision: p) == "\"NaN\"")
            #expect(JSONNumber.format(.infinity, precision: p) == "\"Infinity\"")
            #expect(JSONNumber.format(-.infinity, precision: p) == "\"-Infinity\"")
        }
        // A finite double beyond float32's range is infinite in a float32 job, never "inf".
        #expect(JSONNumber.format(1e300, precision: .float32) == "\"Infinity\"")
        #expect(JSONNumber.format(-1e300, precision: .float32) == "\"-Infinity\"")
        #expect(try JSONParser.parse("\"NaN\"").doubleValue?.isNaN == true)
        #expect(try JSONParser.parse("\"-Infinity\"").doubleValue == -.infinity)
    }

    @Test func specialValuesAreValidJSON() throws {
        for x in [0.0, -0.0, 1, -1, 1e16, 1e-300, Double.leastNonzeroMagnitude, Double.greatestFiniteMagnitude, 123456789.125] {
            for p in [Precision.float32, .float64] {
                _ = try JSONParser.parse(JSONNumber.format(x, precision: p))
            }
        }
    }
}
