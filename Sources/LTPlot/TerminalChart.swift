/// Line charts for a terminal, drawn with Unicode braille (2 × 4 dots per character cell).
///
/// The output is `height` rows of chart with the y values on the left, an x axis marked with the first and last
/// index (1 … n), and a legend. No line is longer than `width` characters (ANSI colour codes aside).
/// With `color`, each series has its own colour from the Okabe–Ito palette, which readers with any common colour
/// vision deficiency can tell apart; without, the first series is solid and the others are dashed or dotted, so they
/// stay apart on a monochrome terminal and in a snapshot file. With `ascii`, the chart uses only ASCII: one mark per
/// character cell (`*`, `o`, `+`, `x`; `#` where series meet), for terminals, fonts and braille displays to which
/// Unicode braille dots mean nothing.
public enum TerminalChart {
    /// Okabe & Ito's colour-blind-safe colours as 256-colour ANSI codes: vermillion, sky blue, bluish green, orange,
    /// reddish purple, yellow.
    public static let palette = ["\u{1B}[38;5;166m", "\u{1B}[38;5;74m", "\u{1B}[38;5;36m", "\u{1B}[38;5;214m",
                                 "\u{1B}[38;5;175m", "\u{1B}[38;5;227m"]
    /// The ASCII marks of the series, in order.
    static let marks: [Character] = ["*", "o", "+", "x"]

    public static func render(series: [(name: String, values: [Double])], width: Int, height: Int, color: Bool,
                              ascii: Bool = false) -> String {
        let rows = max(2, min(height, 500))
        let totalWidth = max(16, min(width, 2000))
        var lines: [String] = []

        let finite = series.flatMap { $0.values.filter(\.isFinite) }
        let skipped = series.reduce(0) { $0 + $1.values.count } - finite.count
        guard let lowest = finite.min(), let highest = finite.max() else {
            return "(no finite values to chart)\n"
        }
        let ticks = Ticks(lo: lowest, hi: highest, target: max(2, min(5, rows / 3)))
        let top = ticks.upper
        let bottom = ticks.lower
        // A braille cell holds 2 × 4 dots; an ASCII cell one mark.
        let (dotsAcross, dotsDown) = ascii ? (1, 1) : (2, 4)
        let pixelHeight = rows * dotsDown
        func py(_ v: Double) -> Int {
            let f = (top - v) / (top - bottom)
            return max(0, min(pixelHeight - 1, Int((f * Double(pixelHeight - 1)).rounded())))
        }

        // The y labels: each tick value labels the row that holds its dots.
        var labels: [Int: String] = [:]
        for v in ticks.values {
            let r = py(v) / dotsDown
            if labels[r] == nil { labels[r] = NumberText.tick(v, step: ticks.step) }
        }
        let gutter = (labels.values.map(\.count).max() ?? 1) + 1
        let columns = max(4, totalWidth - gutter - 1)
        let pixelWidth = columns * dotsAcross

        // One dot mask per series per cell.
        var masks = Array(repeating: Array(repeating: UInt8(0), count: rows * columns), count: series.count)
        let longest = max(1, series.map(\.values.count).max() ?? 1)
        func px(_ i: Int) -> Int { longest > 1 ? Int((Double(i) * Double(pixelWidth - 1) / Double(longest - 1)).rounded()) : 0 }
        for (k, s) in series.enumerated() {
            var drawnDots = 0
            func plot(_ x: Int, _ y: Int) {
                defer { drawnDots += 1 }
                guard ascii || color || dashOn(series: k, dot: drawnDots) else { return }
                guard x >= 0, x < pixelWidth, y >= 0, y < pixelHeight else { return }
                masks[k][(y / dotsDown) * columns + x / dotsAcross] |= ascii ? 1 : brailleBit(x % 2, y % 4)
            }
            var previous: (Int, Int)?
            for (i, v) in s.values.enumerated() {
                guard v.isFinite else { previous = nil; continue }
                let p = (px(i), py(v))
                if let q = previous {
                    line(from: q, to: p, skipFirst: true, plot)
                } else {
                    plot(p.0, p.1)
                }
                previous = p
            }
        }

        let reset = "\u{1B}[0m"
        func glyph(_ bits: UInt8, series k: Int, owners: Int) -> Character {
            ascii ? (owners > 1 ? "#" : marks[k % marks.count]) : braille(bits)
        }
        for r in 0..<rows {
            let label = labels[r] ?? ""
            var text = String(repeating: " ", count: gutter - 1 - label.count) + label + " "
                + (labels[r] != nil ? (ascii ? "+" : "┤") : (ascii ? "|" : "│"))
            for col in 0..<columns {
                var combined: UInt8 = 0
                var owner = -1
                var ownerDots = 0
                var owners = 0
                for k in 0..<series.count {
                    let m = masks[k][r * columns + col]
                    combined |= m
                    let dots = m.nonzeroBitCount
                    if dots > 0 { owners += 1 }
                    if dots > ownerDots { owner = k; ownerDots = dots }
                }
                if combined == 0 {
                    text += " "
                } else if color, owner >= 0 {
                    text += palette[owner % palette.count] + String(glyph(combined, series: owner, owners: owners)) + reset
                } else {
                    text.append(glyph(combined, series: max(0, owner), owners: owners))
                }
            }
            lines.append(trimTrailingSpaces(text))
        }
        lines.append(String(repeating: " ", count: gutter) + (ascii ? "+" : "└") + String(repeating: ascii ? "-" : "─", count: columns))
        let first = "1"
        let last = String(longest)
        let gap = max(1, columns + 1 - first.count - last.count)
        lines.append(String(repeating: " ", count: gutter) + first + String(repeating: " ", count: gap) + last)

        // Legend: a short sample of each series' stroke, then its name; wrapped to the width.
        var legendLine = ""
        var legendWidth = 0
        for (k, s) in series.enumerated() {
            var sample = ""
            for cell in 0..<3 {
                var bits: UInt8 = 0
                for half in 0..<2 where color || dashOn(series: k, dot: cell * 2 + half) { bits |= brailleBit(half, 1) | brailleBit(half, 2) }
                sample.append(ascii ? marks[k % marks.count] : bits == 0 ? " " : braille(bits))
            }
            let room = max(1, totalWidth - 4)
            let name = s.name.count > room ? String(s.name.prefix(room - (ascii ? 3 : 1))) + (ascii ? "..." : "…") : s.name
            let entryWidth = 4 + name.count
            let entry = (color ? palette[k % palette.count] + sample + reset : sample) + " " + name
            if legendWidth > 0 && legendWidth + 3 + entryWidth > totalWidth {
                lines.append(legendLine)
                legendLine = ""
                legendWidth = 0
            }
            if legendWidth > 0 { legendLine += "   "; legendWidth += 3 }
            legendLine += entry
            legendWidth += entryWidth
        }
        if !legendLine.isEmpty { lines.append(legendLine) }
        if skipped > 0 { lines.append("(\(skipped) non-finite value\(skipped == 1 ? "" : "s") not drawn)") }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Whether the n-th dot of a series' stroke is drawn: series 0 solid, 1 dashed, 2 dotted, 3 long dashes.
    static func dashOn(series: Int, dot: Int) -> Bool {
        switch series % 4 {
        case 0: return true
        case 1: return (dot / 2) % 2 == 0
        case 2: return dot % 3 == 0
        default: return (dot / 4) % 3 != 2
        }
    }

    /// The bit of the braille dot in column x (0, 1) and row y (0…3) of a cell.
    static func brailleBit(_ x: Int, _ y: Int) -> UInt8 {
        let left: [UInt8] = [0x01, 0x02, 0x04, 0x40]
        let right: [UInt8] = [0x08, 0x10, 0x20, 0x80]
        return x == 0 ? left[y] : right[y]
    }

    static func braille(_ bits: UInt8) -> Character {
        Character(Unicode.Scalar(0x2800 + UInt32(bits)) ?? " ")
    }

    /// Bresenham's line from a to b, calling `plot` for each pixel (without a when `skipFirst`).
    static func line(from a: (Int, Int), to b: (Int, Int), skipFirst: Bool, _ plot: (Int, Int) -> Void) {
        var x = a.0
        var y = a.1
        let dx = abs(b.0 - a.0)
        let dy = -abs(b.1 - a.1)
        let sx = a.0 < b.0 ? 1 : -1
        let sy = a.1 < b.1 ? 1 : -1
        var err = dx + dy
        var first = true
        while true {
            if !(first && skipFirst) { plot(x, y) }
            first = false
            if x == b.0 && y == b.1 { break }
            let e2 = 2 * err
            if e2 >= dy { err += dy; x += sx }
            if e2 <= dx { err += dx; y += sy }
        }
    }

    /// Byte by byte: walking Characters backwards (`last`, `dropLast`) counted the whole line again for every space,
    /// and was 60 % of `ltctl watch`'s time. A space is one byte and never part of the character before it.
    static func trimTrailingSpaces(_ s: String) -> String {
        let bytes = s.utf8
        var end = bytes.endIndex
        while end > bytes.startIndex {
            let before = bytes.index(before: end)
            guard bytes[before] == UInt8(ascii: " ") else { break }
            end = before
        }
        return String(decoding: bytes[..<end], as: UTF8.self)
    }
}
