import Foundation
import LTEngine
import LTData
import LTProtocol

extension CSVReader {
    /// Reads a CSV file, or standard input for `-`, and parses it (see `CSVReader.parse`).
    static func read(path: String, xColumn: String?, yColumn: String?, format: CSVFormat = .automatic) throws -> Points {
        let text: String
        if path == "-" {
            text = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
        } else {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw InputError("cannot read CSV file \(path): \(FileManager.default.fileExists(atPath: path) ? "permission denied" : "no such file")")
            }
            text = String(decoding: data, as: UTF8.self)
        }
        return try parse(text, name: path, xColumn: xColumn, yColumn: yColumn, format: format)
    }
}

/// `--synthetic slope=3,intercept=-2,noise=0.5,n=1000,seed=1[,xmin=0,xmax=10]`: y = slope·x + intercept + noise·z.
///
/// Deterministic everywhere: SplitMix64 seeded with `seed` gives 64-bit words; a uniform double is the top 53 bits
/// divided by 2^53. x_i = xmin + (xmax - xmin)·u, then z is one Box-Muller normal from two more draws:
/// z = sqrt(-2·ln(1 - u1))·cos(2π·u2) (1 - u1 lies in (0, 1], so the log is finite).
struct SyntheticData {
    var slope = 3.0, intercept = -2.0, noise = 0.5, count = 1000, seed: UInt64 = 1, xMin = 0.0, xMax = 10.0

    static let maxCount = 10_000_000

    init(parsing spec: String) throws {
        for item in spec.split(separator: ",") where !item.isEmpty {
            let pair = item.split(separator: "=", maxSplits: 1).map(String.init)
            guard pair.count == 2 else { throw InputError("--synthetic: \"\(item)\" is not key=value") }
            let (key, value) = (pair[0].trimmingCharacters(in: .whitespaces), pair[1].trimmingCharacters(in: .whitespaces))
            func number() throws -> Double {
                guard let v = Double(value), v.isFinite else { throw InputError("--synthetic: \(key)=\(value) is not a finite number") }
                return v
            }
            switch key {
            case "slope": slope = try number()
            case "intercept": intercept = try number()
            case "noise": noise = try number()
            case "xmin": xMin = try number()
            case "xmax": xMax = try number()
            case "n":
                guard let n = Int(value), n >= 1, n <= Self.maxCount else {
                    throw InputError("--synthetic: n=\(value) must be an integer in 1...\(Self.maxCount)")
                }
                count = n
            case "seed":
                guard let s = UInt64(value) else { throw InputError("--synthetic: seed=\(value) must be an integer in 0...2^64-1") }
                seed = s
            default:
                throw InputError("--synthetic: unknown key \"\(key)\"; use slope, intercept, noise, n, seed, xmin, xmax")
            }
        }
        guard xMin < xMax else { throw InputError("--synthetic: xmin must be below xmax") }
    }

    func generate() -> Points {
        var rng = SplitMix64(seed: seed)
        var points = Points(x: [], y: [])
        points.x.reserveCapacity(count)
        points.y.reserveCapacity(count)
        for _ in 0..<count {
            let x = xMin + (xMax - xMin) * rng.nextUnit()
            let u1 = rng.nextUnit(), u2 = rng.nextUnit()
            let z = (-2 * log(1 - u1)).squareRoot() * cos(2 * Double.pi * u2)
            points.x.append(x)
            points.y.append(slope * x + intercept + noise * z)
        }
        return points
    }
}

