import Foundation
import Testing
#if canImport(FoundationXML)
import FoundationXML
#endif
#if canImport(Glibc)
import Glibc
#endif

/// `ltctl plot` and `ltctl compare --chart` against a real ltd on a private socket.
@Suite(.serialized) struct PlotCommandTests {
    typealias Ltctl = ([String], [String: String]) throws -> CommandResult

    /// Starts ltd in a fresh directory, runs the Colab example to its end, and hands `body` the directory and a way to
    /// run ltctl against it (stderr interleaved into stdout, as a user sees it).
    func withFinishedColabJob(_ body: (_ directory: String, _ ltctl: Ltctl) throws -> Void) throws {
        let daemon = try DaemonProcess.launch(tag: "plot")
        defer { daemon.cleanUp() }
        let ltctl: Ltctl = { arguments, environment in
            try daemon.ltctl(arguments, environment: environment, stderr: .intoStdout)
        }
        let started = try ltctl(["start", "colab", "--example", "colab"], [:])
        #expect(started.status == 0, "ltctl start: \(started.stdout)")
        // tail exits at the job's end event.
        let tailed = try ltctl(["tail", "colab"], ["NO_COLOR": "1"])
        #expect(tailed.status == 0, "ltctl tail: \(tailed.stdout)")
        try body(daemon.directory, ltctl)
    }

    @Test func plotWritesTheSVGOfTheColabExample() throws {
        try withFinishedColabJob { directory, ltctl in
            let file = directory + "/colab.svg"
            let plotted = try ltctl(["plot", "colab", "-o", file], [:])
            #expect(plotted.status == 0, "ltctl plot: \(plotted.stdout)")
            #expect(plotted.stdout.contains("colab: wrote \(file) (12 steps, finished)"))
            let svg = try String(contentsOfFile: file, encoding: .utf8)
            #expect(XMLParser(data: Data(svg.utf8)).parse(), "not well-formed XML")
            func count(_ needle: String) -> Int { svg.components(separatedBy: needle).count - 1 }
            #expect(count("class=\"point\"") == 12)
            #expect(count("class=\"step-line\"") == 12)
            #expect(count("class=\"final-line\"") == 1)
            #expect(count("class=\"optimum-line\"") == 1)
            #expect(count("class=\"path-point\"") == 12)
            #expect(count("class=\"epoch-boundary\"") == 3)
            #expect(svg.contains(">colab</text>"))
            #expect(svg.contains("rmsprop (learning_rate 0.05"))
            // The final line is Keras's: w 1.3996835, b 0.94196117 (the daemon reproduces the golden trace).
            #expect(svg.contains("final: y = 1.4x + 0.942"))

            let animated = directory + "/colab-animated.svg"
            let again = try ltctl(["plot", "colab", "-o", animated, "--animate", "--width", "640"], [:])
            #expect(again.status == 0, "ltctl plot --animate: \(again.stdout)")
            let text = try String(contentsOfFile: animated, encoding: .utf8)
            #expect(XMLParser(data: Data(text.utf8)).parse())
            #expect(text.contains("<animate ") && text.contains("width=\"640\""))
        }
    }

    @Test func plotRefusesWhatItCannotDo() throws {
        try withFinishedColabJob { directory, ltctl in
            let unknown = try ltctl(["plot", "nosuchjob", "-o", directory + "/x.svg"], [:])
            #expect(unknown.status != 0)
            #expect(unknown.stdout.contains("nosuchjob"))
            #expect(!FileManager.default.fileExists(atPath: directory + "/x.svg"))
            let unwritable = try ltctl(["plot", "colab", "-o", directory + "/no/such/dir/x.svg"], [:])
            #expect(unwritable.status != 0)
            #expect(unwritable.stdout.contains("cannot write"))
            let narrow = try ltctl(["plot", "colab", "-o", directory + "/x.svg", "--width", "10"], [:])
            #expect(narrow.status != 0 && narrow.stdout.contains("--width"))
        }
    }

    @Test func compareChartFitsTheTerminal() throws {
        try withFinishedColabJob { _, ltctl in
            let compared = try ltctl(["compare", "colab", "--chart"], ["NO_COLOR": "1", "COLUMNS": "70"])
            #expect(compared.status == 0, "ltctl compare --chart: \(compared.stdout)")
            guard let range = compared.stdout.range(of: "RMSE per iteration\n") else {
                Issue.record("no chart in:\n\(compared.stdout)")
                return
            }
            let chart = compared.stdout[range.upperBound...].split(separator: "\n")
            #expect(chart.count >= 15)
            #expect(chart.allSatisfy { $0.count <= 70 }, "\(chart)")
            #expect(chart.contains { $0.unicodeScalars.contains { (0x2801...0x28FF).contains($0.value) } }, "no braille")
            #expect(!compared.stdout.contains("\u{1B}["), "NO_COLOR must switch colour off")
            // The chart in words, wrapped to the width, for those who cannot see it.
            #expect(chart.contains { $0.hasPrefix("In words: validation RMSE fell from 18.77 to 12.62 over 12 steps;") })
            let ascii = try ltctl(["compare", "colab", "--chart", "--ascii"], ["NO_COLOR": "1", "COLUMNS": "70"])
            #expect(ascii.status == 0)
            let asciiChart = ascii.stdout[(ascii.stdout.range(of: "RMSE per iteration\n")?.upperBound ?? ascii.stdout.endIndex)...]
            #expect(asciiChart.contains("*** Keras RMSE") && asciiChart.contains("ooo validation RMSE"))
            #expect(asciiChart.unicodeScalars.allSatisfy { $0.isASCII }, "\(asciiChart)")
            let refused = try ltctl(["compare", "colab", "--chart", "--json"], [:])
            #expect(refused.status != 0)
        }
    }
}
