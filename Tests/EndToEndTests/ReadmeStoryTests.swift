import Foundation
import Testing

/// The README's opening story runs as written: its commands are taken from README.md itself, so the text and the
/// test cannot drift apart, and every figure it shows must be what ltctl prints.
@Suite("README: why Keras said 23.1", .serialized)
struct ReadmeStoryTests {
    /// The README's first code block after the story's heading, split into commands (`$ …`, with `\` continuations)
    /// and the lines each printed.
    static func story() throws -> [(command: [String], output: [String])] {
        let readme = try String(contentsOf: Paths.repositoryRoot.appendingPathComponent("README.md"), encoding: .utf8)
        guard let heading = readme.range(of: "## Why Keras said 23.1 when your spreadsheet said 21.8"),
              let open = readme.range(of: "```\n", range: heading.upperBound..<readme.endIndex),
              let close = readme.range(of: "\n```", range: open.upperBound..<readme.endIndex) else {
            throw HarnessFailure("README.md has no code block under its story heading")
        }
        var result: [(command: [String], output: [String])] = []
        var pending = ""
        for line in readme[open.upperBound..<close.lowerBound].split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("$ ") || !pending.isEmpty {
                pending += (pending.isEmpty ? String(line.dropFirst(2)) : " " + line.trimmingCharacters(in: .whitespaces))
                if pending.hasSuffix("\\") { pending.removeLast(); continue }
                result.append((shellWords(pending), []))
                pending = ""
            } else if !result.isEmpty {
                result[result.count - 1].output.append(String(line))
            }
        }
        return result
    }

    /// Splits a command line into words, honouring double quotes (all the README needs).
    static func shellWords(_ line: String) -> [String] {
        var words: [String] = [], word = "", quoted = false, inWord = false
        for c in line {
            if c == "\"" { quoted.toggle(); inWord = true } else if c == " " && !quoted {
                if inWord { words.append(word); word = ""; inWord = false }
            } else { word.append(c); inWord = true }
        }
        if inWord { words.append(word) }
        return words
    }

    static func normalized(_ lines: some Sequence<some StringProtocol>) -> String {
        lines.joined(separator: " ").split(whereSeparator: \.isWhitespace).joined(separator: " ")
    }

    @Test func theLearnersStoryPrintsWhatTheReadmeSays() throws {
        let steps = try Self.story()
        #expect(steps.map { $0.command.prefix(3).joined(separator: " ") } == ["ltctl start learner", "ltctl compare learner"])
        let h = try DaemonProcess.launchForLtctl()
        for (command, shown) in steps {
            #expect(command.first == "ltctl")
            let result = try h.ltctl(Array(command.dropFirst()))
            #expect(result.status == 0, "\(command): \(result.stderr)")
            if command[1] == "start" {
                // The search's report (stderr) is shown whole, line for line.
                #expect(result.stderr.split(separator: "\n").map(String.init) == shown, "\(result.stderr)")
                #expect(try h.waitFinished("learner") == 0)
            } else {
                // compare's text, which wraps at the terminal's width, holds everything the README shows.
                let printed = Self.normalized(result.stdout.split(separator: "\n"))
                #expect(printed.contains(Self.normalized(shown)), "\(result.stdout)")
            }
        }
    }
}
