/// A small writer for SVG: elements with escaped attributes and text, appended to one string.
struct XMLWriter {
    private(set) var text = ""
    private var open: [String] = []

    /// Escapes the five XML special characters and drops characters XML 1.0 forbids (C0 controls but tab, LF, CR).
    static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for scalar in s.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            case "\t", "\n", "\r": out.unicodeScalars.append(scalar)
            default:
                let v = scalar.value
                if v < 0x20 || v == 0xFFFE || v == 0xFFFF { continue }
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    private func attributes(_ attrs: KeyValuePairs<String, String>) -> String {
        var s = ""
        for (k, v) in attrs { s += " \(k)=\"\(Self.escape(v))\"" }
        return s
    }

    private var indent: String { String(repeating: " ", count: open.count) }

    mutating func raw(_ s: String) { text += s }

    /// `<name attrs/>`
    mutating func empty(_ name: String, _ attrs: KeyValuePairs<String, String>) {
        text += "\(indent)<\(name)\(attributes(attrs))/>\n"
    }

    /// `<name attrs>escaped text</name>`
    mutating func leaf(_ name: String, _ attrs: KeyValuePairs<String, String>, text content: String) {
        text += "\(indent)<\(name)\(attributes(attrs))>\(Self.escape(content))</\(name)>\n"
    }

    mutating func start(_ name: String, _ attrs: KeyValuePairs<String, String> = [:]) {
        text += "\(indent)<\(name)\(attributes(attrs))>\n"
        open.append(name)
    }

    mutating func end() {
        guard let name = open.popLast() else { return }
        text += "\(indent)</\(name)>\n"
    }

    /// Closes every element still open, so the document is always well formed.
    mutating func finish() -> String {
        while !open.isEmpty { end() }
        return text
    }
}
