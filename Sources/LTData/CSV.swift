import Foundation
import LTProtocol

/// A mistake in what the user gave ltctl (a file, a flag's value): the message says what to fix.
public struct InputError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Training data read or made on the client side: the daemon never opens a file named by a client, so ltctl
/// sends the numbers inline.
public struct Points: Sendable {
    public init(x: [Double], y: [Double]) { self.x = x; self.y = y }

    public var x: [Double]
    public var y: [Double]

    public var json: JSONValue { .object([("x", .array(x.map(JSONValue.init))), ("y", .array(y.map(JSONValue.init)))]) }

    /// The classic twelve-point exercise (x = 1..12), with which Keras prints 23.1 where a spreadsheet says 21.8.
    public static let colab = Points(
        x: (1...12).map(Double.init),
        y: [5.0, 8.8, 9.6, 14.2, 18.8, 19.5, 21.4, 26.8, 28.9, 32.0, 33.8, 38.2])

    /// Splits off the last `fraction` of the rows as validation data, as Keras's `validation_split` does:
    /// training keeps the first ceil(n · (1 - fraction)) rows.
    public func split(validationFraction fraction: Double) throws -> (train: Points, validation: Points) {
        guard fraction > 0, fraction < 1 else { throw InputError("--validation split:F needs 0 < F < 1, got \(fraction)") }
        let keep = Int((Double(x.count) * (1 - fraction)).rounded(.up))
        guard keep >= 1, keep < x.count else {
            throw InputError("--validation split:\(fraction) of \(x.count) rows leaves an empty training or validation set")
        }
        return (Points(x: Array(x[..<keep]), y: Array(y[..<keep])), Points(x: Array(x[keep...]), y: Array(y[keep...])))
    }
}

/// How a CSV file separates its fields and writes its decimals. Spreadsheets in many European locales save
/// `1;5,0`: a semicolon between fields and a decimal comma.
public struct CSVFormat: Sendable {
    public init(delimiter: Character?, decimalComma: Bool?) { self.delimiter = delimiter; self.decimalComma = decimalComma }

    /// nil: detect from the first row.
    public var delimiter: Character?
    /// nil: accept a decimal comma whenever the delimiter is not a comma.
    public var decimalComma: Bool?

    public static let automatic = CSVFormat(delimiter: nil, decimalComma: nil)

    /// `--delimiter`: one character, or the words `tab`, `comma`, `semicolon`.
    public static func delimiter(named text: String) throws -> Character {
        switch text {
        case "tab", "\\t", "\t": return "\t"
        case "comma": return ","
        case "semicolon": return ";"
        case "space", " ": return " "
        default:
            guard text.count == 1, let c = text.first, c != "\"", c != "\n" else {
                throw InputError("--delimiter \(text): give one character, or tab, comma or semicolon")
            }
            return c
        }
    }

    public static func describe(_ delimiter: Character) -> String {
        switch delimiter {
        case "\t": return "tab"
        case ",": return "comma"
        case ";": return "semicolon"
        case " ": return "space"
        default: return "\"\(delimiter)\""
        }
    }
}

/// Reads two numeric columns from a CSV file. A header row is optional: it is present when any field of the first
/// row is not a number. `--x` / `--y` name a column by header name or by 1-based position; default columns 1 and 2.
/// The delimiter is detected from the first row (a semicolon, else a tab, else a comma) unless `--delimiter` says;
/// with a semicolon or tab delimiter a decimal comma (`5,0`) is read as a decimal point. Double quotes may enclose
/// a field. Blank lines and lines starting with `#` are skipped.
public enum CSVReader {
    public static func parse(_ text: String, name: String, xColumn: String?, yColumn: String?,
                      format: CSVFormat = .automatic) throws -> Points {
        var lines: [(number: Int, text: Substring)] = []
        for (i, line) in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }).enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            lines.append((i + 1, line))
        }
        guard let first = lines.first else { throw InputError("\(name): no data rows") }
        let separator = format.delimiter ?? detectDelimiter(first.text)
        let decimalComma = format.decimalComma ?? (separator != ",")
        let how = "fields separated by \(CSVFormat.describe(separator))\(format.delimiter == nil ? " (detected)" : "")"
            + (decimalComma ? ", decimal commas accepted" : "")
        func number(_ field: String) -> Double? {
            if let value = Double(field) { return value }
            // "5,0" → 5.0: one comma and no point, only where a comma cannot be a delimiter.
            guard decimalComma, field.filter({ $0 == "," }).count == 1, !field.contains(".") else { return nil }
            return Double(field.replacingOccurrences(of: ",", with: "."))
        }
        let firstFields = fields(first.text, separator: separator)
        let hasHeader = firstFields.contains { number($0) == nil }
        let header = hasHeader ? firstFields : []
        func column(_ spec: String?, default position: Int, flag: String) throws -> Int {
            guard let spec else { return position }
            if let index = header.firstIndex(of: spec) { return index }
            if let number = Int(spec), number >= 1, number <= firstFields.count { return number - 1 }
            let known = header.isEmpty ? "columns 1-\(firstFields.count)" : "columns " + header.map { "\"\($0)\"" }.joined(separator: ", ")
            throw InputError("\(name): \(flag) \(spec) names no column; the file has \(known)")
        }
        guard firstFields.count >= 2 || (xColumn != nil && yColumn != nil) else {
            throw InputError("\(name): need two columns (x and y), found \(firstFields.count) with \(how); "
                + "if the file uses another separator, say which with --delimiter (e.g. --delimiter ';')")
        }
        let xi = try column(xColumn, default: 0, flag: "--x")
        let yi = try column(yColumn, default: 1, flag: "--y")
        func columnName(_ index: Int) -> String {
            index < header.count ? "column \(index + 1) (\"\(header[index])\")" : "column \(index + 1)"
        }
        var points = Points(x: [], y: [])
        for line in lines.dropFirst(hasHeader ? 1 : 0) {
            let f = fields(line.text, separator: separator)
            guard xi < f.count, yi < f.count else {
                throw InputError("\(name):\(line.number): expected at least \(max(xi, yi) + 1) fields, found \(f.count) (\(how))")
            }
            var values: [Double] = []
            for index in [xi, yi] {
                guard let value = number(f[index]), value.isFinite else {
                    throw InputError("\(name):\(line.number): \(columnName(index)): \"\(f[index])\" is not a finite number (\(how))")
                }
                values.append(value)
            }
            points.x.append(values[0])
            points.y.append(values[1])
        }
        guard !points.x.isEmpty else { throw InputError("\(name): no data rows after the header") }
        return points
    }

    /// A semicolon if the first row has one (it is never part of a number), else a tab, else a comma.
    public static func detectDelimiter(_ line: Substring) -> Character {
        line.contains(";") ? ";" : line.contains("\t") ? "\t" : ","
    }

    /// The fields of one line, trimmed; a field in double quotes may hold the delimiter, and "" is a quote.
    public static func fields(_ line: Substring, separator: Character) -> [String] {
        var result: [String] = []
        var field = ""
        var quoted = false
        let chars = Array(line)
        var i = 0
        while i < chars.count {
            let c = chars[i]
            if c == "\"" {
                if quoted, i + 1 < chars.count, chars[i + 1] == "\"" {
                    field.append("\"")
                    i += 1
                } else {
                    quoted.toggle()
                }
            } else if c == separator, !quoted {
                result.append(field.trimmingCharacters(in: .whitespaces))
                field = ""
            } else {
                field.append(c)
            }
            i += 1
        }
        result.append(field.trimmingCharacters(in: .whitespaces))
        return result
    }
}
