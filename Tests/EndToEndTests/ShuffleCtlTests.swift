import Foundation
import LTEngine
import LTProtocol
import Testing

/// `ltctl start --shuffle`: the seed is named on the start output, recorded in the resolved spec and start event, and
/// the rows fed are Keras 3.15.1's order for it (docs/SHUFFLE.md).
@Suite("ltctl start --shuffle")
struct ShuffleCtlTests {
    /// Rows of every step of a finished job, from its event stream.
    func rows(of job: String, _ h: DaemonProcess) throws -> (start: JSONValue, rows: [[Int]]) {
        let lines = String(decoding: try h.rawSubscription(job), as: UTF8.self).split(separator: "\n")
        let events = try lines.map { try JSONParser.parse(String($0)) }
        let steps = events.filter { $0["type"]?.stringValue == "step" }
        return (events[0], steps.map { $0["batch"]?["indices"]?.arrayValue?.compactMap(\.intValue) ?? [] })
    }

    @Test func seededIsKerasOrderEveryEpoch() throws {
        let h = try DaemonProcess.launchForLtctl(tag: "shuffle")
        defer { h.cleanUp() }
        let run = try h.ltctl(["start", "s42", "--example", "colab", "--optimizer", "sgd", "--learning-rate", "0.001",
                               "--epochs", "3", "--shuffle=42"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains("shuffled as Keras 3.15.1 after set_random_seed(42), the same order every epoch"))
        #expect(try h.waitFinished("s42") == 0)
        let (start, rows) = try rows(of: "s42", h)
        #expect(start["spec"]?["shuffle"] == .object([("seed", .number("42"))]))
        #expect(start["spec"]?["keras"]?.stringValue == "3.15.1")
        // Golden case sgd_b4_e3_shuffle_seed42, every epoch.
        #expect(rows == Array(repeating: [[11, 10, 9, 7], [0, 4, 6, 8], [2, 5, 3, 1]], count: 3).flatMap { $0 })
    }

    @Test func bareShuffleNamesTheSeedItDrew() throws {
        let h = try DaemonProcess.launchForLtctl(tag: "shuffle")
        defer { h.cleanUp() }
        let run = try h.ltctl(["start", "drawn", "--example", "colab", "--shuffle"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(try h.waitFinished("drawn") == 0)
        let (start, rows) = try rows(of: "drawn", h)
        let seed = try #require(start["spec"]?["shuffle"]?["seed"]?.uint64Value)
        #expect(seed < 1 << 31)
        #expect(run.stdout.contains("after set_random_seed(\(seed))"))
        let keras = KerasShuffle.permutation(count: 12, seed: seed)
        #expect(rows.prefix(3).flatMap { $0 } == keras)
        #expect(rows.suffix(3).flatMap { $0 } == keras)
    }

    @Test func seedsBeyondKerasAreUsageErrors() throws {
        let h = try DaemonProcess.launchForLtctl(tag: "shuffle")
        defer { h.cleanUp() }
        let run = try h.ltctl(["start", "big", "--example", "colab", "--shuffle=4294967296"])
        #expect(run.status == 64)
        #expect(run.stderr.contains("0 to 4294967295"))
        let help = try h.ltctl(["start", "--help"])
        #expect(help.stdout.contains("set_random_seed(SEED)") && help.stdout.contains("shuffle=\"batch\""))
    }
}
