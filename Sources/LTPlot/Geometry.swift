/// A rectangle in SVG user units (y grows downward).
struct Frame {
    var x: Double
    var y: Double
    var width: Double
    var height: Double
    var maxX: Double { x + width }
    var maxY: Double { y + height }

    func inset(left: Double, top: Double, right: Double, bottom: Double) -> Frame {
        Frame(x: x + left, y: y + top, width: max(1, width - left - right), height: max(1, height - top - bottom))
    }
}

typealias Point = (x: Double, y: Double)

enum Clip {
    /// The part of the segment p→q inside the box [x0, x1] × [y0, y1] (Liang–Barsky), or nil if none is.
    static func segment(_ p: Point, _ q: Point, x0: Double, x1: Double, y0: Double, y1: Double) -> (Point, Point)? {
        guard p.x.isFinite, p.y.isFinite, q.x.isFinite, q.y.isFinite else { return nil }
        let dx = q.x - p.x
        let dy = q.y - p.y
        var t0 = 0.0
        var t1 = 1.0
        for (pk, qk) in [(-dx, p.x - x0), (dx, x1 - p.x), (-dy, p.y - y0), (dy, y1 - p.y)] {
            if pk == 0 {
                if qk < 0 { return nil }
            } else {
                let r = qk / pk
                if pk < 0 { t0 = max(t0, r) } else { t1 = min(t1, r) }
                if t0 > t1 { return nil }
            }
        }
        return ((p.x + t0 * dx, p.y + t0 * dy), (p.x + t1 * dx, p.y + t1 * dy))
    }

    /// The line y = w·x + b across [x0, x1], clipped to [y0, y1].
    static func line(w: Double, b: Double, x0: Double, x1: Double, y0: Double, y1: Double) -> (Point, Point)? {
        guard w.isFinite, b.isFinite else { return nil }
        return segment((x0, w * x0 + b), (x1, w * x1 + b), x0: x0, x1: x1, y0: y0, y1: y1)
    }
}

/// Colours as "#rrggbb", blended for the light-to-dark order of the steps.
enum Colour {
    static func mix(_ a: String, _ b: String, _ t: Double) -> String {
        let ca = rgb(a)
        let cb = rgb(b)
        let f = max(0, min(1, t.isFinite ? t : 0))
        func channel(_ x: Int, _ y: Int) -> Int { Int((Double(x) + (Double(y) - Double(x)) * f).rounded()) }
        return hex(channel(ca.0, cb.0), channel(ca.1, cb.1), channel(ca.2, cb.2))
    }

    private static func rgb(_ s: String) -> (Int, Int, Int) {
        let digits = Array(s.utf8.dropFirst())
        guard digits.count == 6 else { return (0, 0, 0) }
        func nibble(_ c: UInt8) -> Int {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return Int(c - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): return Int(c - UInt8(ascii: "a")) + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): return Int(c - UInt8(ascii: "A")) + 10
            default: return 0
            }
        }
        func byte(_ i: Int) -> Int { nibble(digits[i]) * 16 + nibble(digits[i + 1]) }
        return (byte(0), byte(2), byte(4))
    }

    private static func hex(_ r: Int, _ g: Int, _ b: Int) -> String {
        let table = Array("0123456789abcdef")
        var s = "#"
        for v in [r, g, b] {
            let c = max(0, min(255, v))
            s.append(table[c / 16])
            s.append(table[c % 16])
        }
        return s
    }
}
