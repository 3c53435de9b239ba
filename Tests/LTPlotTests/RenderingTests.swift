import Foundation
import Testing
@testable import LTPlot

/// Renders the SVG with a real renderer (rsvg-convert from Debian's librsvg2-bin) and inspects the pixels.
@Suite struct RenderingTests {
    static func executable(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for dir in path.split(separator: ":") {
            let candidate = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    static let renderer = executable("rsvg-convert")
    static let python = executable("python3")

    /// Decodes an 8-bit RGB or RGBA PNG (zlib + the five PNG filters) and reports size, distinct colours and
    /// the count of some exact colours. Python's zlib is the only help taken; the decoding is spelled out here.
    static let pngStatistics = #"""
import sys, zlib, struct, json
data = open(sys.argv[1], 'rb').read()
assert data[:8] == b'\x89PNG\r\n\x1a\n', 'not a PNG'
pos, idat, width, height, ctype = 8, b'', 0, 0, 0
while pos < len(data):
    length, kind = struct.unpack('>I4s', data[pos:pos + 8]); body = data[pos + 8:pos + 8 + length]; pos += 12 + length
    if kind == b'IHDR':
        width, height, depth, ctype = struct.unpack('>IIBB', body[:10]); assert depth == 8 and ctype in (2, 6), (depth, ctype)
    elif kind == b'IDAT': idat += body
raw = zlib.decompress(idat); bpp = 4 if ctype == 6 else 3; stride = width * bpp
prev = bytearray(stride); colours = {}; i = 0
for y in range(height):
    f = raw[i]; line = bytearray(raw[i + 1:i + 1 + stride]); i += 1 + stride
    for x in range(stride):
        a = line[x - bpp] if x >= bpp else 0; b = prev[x]; c = prev[x - bpp] if x >= bpp else 0
        if f == 1: line[x] = (line[x] + a) & 255
        elif f == 2: line[x] = (line[x] + b) & 255
        elif f == 3: line[x] = (line[x] + (a + b) // 2) & 255
        elif f == 4:
            p = a + b - c; pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[x] = (line[x] + (a if pa <= pb and pa <= pc else (b if pb <= pc else c))) & 255
    for x in range(0, stride, bpp):
        key = '%02x%02x%02x' % (line[x], line[x + 1], line[x + 2]) if bpp == 3 or line[x + 3] else 'transparent'
        colours[key] = colours.get(key, 0) + 1
    prev = line
print(json.dumps({'width': width, 'height': height, 'colours': colours}))
"""#

    struct Statistics: Decodable {
        var width: Int
        var height: Int
        var colours: [String: Int]
    }

    static func run(_ tool: String, _ arguments: [String]) throws -> (status: Int32, output: Data, error: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let output = out.fileHandleForReading.readDataToEndOfFile()
        let error = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, output, String(decoding: error, as: UTF8.self))
    }

    @Test(.enabled(if: renderer != nil && python != nil,
                   "rsvg-convert or python3 is missing: apt-get install -y librsvg2-bin python3 (scripts/install-deps does this)"))
    func twelvePointExampleRendersToAPictureThatIsNotBlank() throws {
        guard let renderer = Self.renderer, let python = Self.python else { return }
        let run = try GoldenRun.load()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ltplot-\(ProcessInfo.processInfo.processIdentifier)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let svgFile = directory.appendingPathComponent("colab.svg")
        let pngFile = directory.appendingPathComponent("colab.png")
        try SVGPlot.render(run).write(to: svgFile, atomically: true, encoding: .utf8)

        let rendered = try Self.run(renderer, ["-f", "png", "-o", pngFile.path, svgFile.path])
        #expect(rendered.status == 0, "rsvg-convert failed: \(rendered.error)")
        #expect(rendered.error.isEmpty, "rsvg-convert complained: \(rendered.error)")

        let decoded = try Self.run(python, ["-c", Self.pngStatistics, pngFile.path])
        #expect(decoded.status == 0, "PNG decoding failed: \(decoded.error)")
        let stats = try JSONDecoder().decode(Statistics.self, from: decoded.output)
        #expect(stats.width == 960 && stats.height == 800)
        let total = stats.width * stats.height
        let white = stats.colours["ffffff"] ?? 0
        #expect(stats.colours["transparent"] == nil, "the background must be painted")
        // Not blank: many colours, and a good share of the picture is ink.
        #expect(stats.colours.count > 50, "only \(stats.colours.count) colours")
        #expect(Double(total - white) / Double(total) > 0.03, "\(total - white) of \(total) pixels are not white")
        // The Okabe–Ito colours were actually painted: blue (data points, validation curve), vermillion (final line,
        // Keras RMSE curve), bluish green (least-squares line).
        for (colour, what) in [("0072b2", "data points and validation curve"), ("d55e00", "final line and Keras RMSE curve"), ("009e73", "least-squares line")] {
            #expect((stats.colours[colour] ?? 0) > 20, "too few pixels of \(what) (#\(colour)): \(stats.colours[colour] ?? 0)")
        }
    }
}
