#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Number formatting without Foundation: fixed decimals for coordinates and tick labels.
enum NumberText {
    /// `v` with at most `decimals` decimals and trailing zeros removed ("12.5", "3", "-0.25").
    /// Non-finite values become "0": callers skip them before, this is only a last guard against "nan" in the SVG.
    static func compact(_ v: Double, decimals: Int = 2) -> String {
        trimmed(fixed(v, decimals: decimals))
    }

    /// `v` with exactly `decimals` decimals ("1.50"). Very large or tiny magnitudes fall back to Swift's shortest form.
    static func fixed(_ v: Double, decimals: Int) -> String {
        guard v.isFinite else { return "0" }
        let places = max(0, min(decimals, 12))
        var scale = 1.0
        for _ in 0..<places { scale *= 10 }
        let scaled = (abs(v) * scale).rounded()
        guard scaled < 9.0e15 else { return "\(v)" }
        let units = Int64(scaled)
        let divisor = Int64(scale)
        let whole = units / divisor
        var text = (v < 0 && units != 0 ? "-" : "") + String(whole)
        if places > 0 {
            var fraction = String(units % divisor)
            while fraction.count < places { fraction = "0" + fraction }
            text += "." + fraction
        }
        return text
    }

    private static func trimmed(_ s: String) -> String {
        guard s.contains(".") else { return s }
        var t = Substring(s)
        while t.last == "0" { t = t.dropLast() }
        if t.last == "." { t = t.dropLast() }
        return t == "-0" ? "0" : String(t)
    }

    /// A tick label: enough decimals to tell ticks `step` apart; scientific notation outside [1e-4, 1e7).
    static func tick(_ v: Double, step: Double) -> String {
        if v == 0 { return "0" }
        let magnitude = max(abs(v), step)
        if magnitude >= 1e7 || step < 1e-4 {
            return scientific(v, significant: max(2, Int(-Math.floor10(step / magnitude)) + 1))
        }
        let decimals = step >= 1 ? 0 : Int(-Math.floor10(step))
        return fixed(v, decimals: decimals)
    }

    /// A short label for a value of unknown scale ("0.058", "402.98", "1.2e+09").
    static func short(_ v: Double) -> String {
        guard v.isFinite else { return v.isNaN ? "NaN" : (v > 0 ? "∞" : "-∞") }
        let a = abs(v)
        if a == 0 { return "0" }
        if a >= 1e6 || a < 1e-3 { return scientific(v, significant: 3) }
        let decimals = a >= 100 ? 1 : (a >= 1 ? 2 : 3)
        return compact(v, decimals: decimals)
    }

    static func scientific(_ v: Double, significant: Int) -> String {
        guard v.isFinite, v != 0 else { return compact(v) }
        let e = Int(Math.floor10(abs(v)))
        var mantissa = v / Math.pow10(e)
        var exponent = e
        // Rounding may carry the mantissa to 10.
        let rounded = Double(fixed(mantissa, decimals: significant - 1)) ?? mantissa
        if abs(rounded) >= 10 {
            mantissa = rounded / 10
            exponent += 1
        }
        let sign = exponent < 0 ? "-" : "+"
        let digits = abs(exponent) < 10 ? "0" + String(abs(exponent)) : String(abs(exponent))
        return compact(mantissa, decimals: significant - 1) + "e" + sign + digits
    }
}

enum Math {
    /// ⌊log10(v)⌋ for v > 0.
    static func floor10(_ v: Double) -> Double { log10(v).rounded(.down) }
    static func pow10(_ e: Int) -> Double { pow(10, Double(e)) }
    static func log(_ v: Double) -> Double { cLog(v) }
    static func exp(_ v: Double) -> Double { cExp(v) }
}

// The C library's log and exp, named so that they do not clash with Math's own members.
@inline(__always) private func cLog(_ v: Double) -> Double { log(v) }
@inline(__always) private func cExp(_ v: Double) -> Double { exp(v) }

/// Evenly spaced "nice" tick values (1, 2 or 5 times a power of ten) covering a range.
struct Ticks: Equatable {
    var values: [Double]
    var step: Double
    /// The range, widened outward to whole steps.
    var lower: Double
    var upper: Double

    /// About `target` ticks covering [lo, hi]; a degenerate or non-finite range is widened to something drawable.
    init(lo: Double, hi: Double, target: Int = 6) {
        var a = lo.isFinite ? lo : 0
        var b = hi.isFinite ? hi : 1
        if a > b { swap(&a, &b) }
        if b - a <= abs(a) * 1e-12 || b - a == 0 {
            let pad = a == 0 ? 1 : abs(a) * 0.1
            a -= pad
            b += pad
        }
        let raw = (b - a) / Double(max(1, target))
        let magnitude = Math.pow10(Int(Math.floor10(raw)))
        let normalized = raw / magnitude
        let nice: Double = normalized <= 1 ? 1 : (normalized <= 2 ? 2 : (normalized <= 5 ? 5 : 10))
        let step = nice * magnitude
        let first = (a / step).rounded(.down)
        let last = (b / step).rounded(.up)
        var values: [Double] = []
        var k = first
        while k <= last && values.count < 100 {
            // Multiplying avoids the drift of repeated addition (0.1 + 0.1 + 0.1 ≠ 0.3).
            let v = k * step
            values.append(abs(v) < step * 1e-9 ? 0 : v)
            k += 1
        }
        self.values = values
        self.step = step
        self.lower = first * step
        self.upper = last * step
    }
}

/// A linear map from data values to pixels.
struct LinearScale {
    var domain: (lo: Double, hi: Double)
    var range: (lo: Double, hi: Double)

    func callAsFunction(_ v: Double) -> Double {
        let span = domain.hi - domain.lo
        guard span != 0 else { return (range.lo + range.hi) / 2 }
        return range.lo + (v - domain.lo) / span * (range.hi - range.lo)
    }

    /// Whether `v` lies within the domain, allowing a rounding hair.
    func contains(_ v: Double) -> Bool {
        let lo = min(domain.lo, domain.hi)
        let hi = max(domain.lo, domain.hi)
        let slack = (hi - lo) * 1e-9
        return v >= lo - slack && v <= hi + slack
    }
}
