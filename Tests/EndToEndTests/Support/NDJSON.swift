import Foundation

/// Newline-delimited JSON as bytes, the form the daemon writes and streams.
enum NDJSON {
    /// The lines of a file, each with its trailing `\n`.
    static func lines(ofFile path: String) throws -> [[UInt8]] {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        return split([UInt8](data))
    }

    /// Splits bytes into lines, each with its trailing `\n`; an unterminated tail is left out.
    static func split(_ bytes: [UInt8]) -> [[UInt8]] {
        var result: [[UInt8]] = []
        var start = 0
        for (i, byte) in bytes.enumerated() where byte == 0x0A {
            result.append(Array(bytes[start...i]))
            start = i + 1
        }
        return result
    }
}

/// Job specs for the daemon tests, as JSON text.
enum JobSpecs {
    /// `rows` points on a noisy line y = 3x + 2, batch `batch`, `epochs` epochs.
    static func noisyLine(rows: Int = 12, epochs: Int = 4, batch: Int = 4, paceMs: Int = 0, paused: Bool = false,
                          optimizer: String = "adam", fast: Bool = true, extra: String = "") -> String {
        let xs = (0..<rows).map { Double($0 % 97) }
        let ys = xs.enumerated().map { 3 * $1 + 2 + Double(($0 * 7) % 11) / 10 }
        func list(_ v: [Double]) -> String { "[" + v.map { String($0) }.joined(separator: ",") + "]" }
        return "{\"data\":{\"x\":\(list(xs)),\"y\":\(list(ys))},\"init\":{\"kernel\":0.5,\"bias\":0},"
            + "\"optimizer\":{\"name\":\"\(optimizer)\",\"learning_rate\":0.01},\"epochs\":\(epochs),\"batch_size\":\(batch),"
            + "\"pace_ms\":\(paceMs),\"paused\":\(paused),\"validation_mode\":\"\(fast ? "fast" : "exact")\"\(extra)}"
    }
}
