import Foundation
import LTProtocol
import Testing

/// `ltctl diff A B` against a real ltd: the same spec twice is bit-identical; a change shows where and why.
@Suite("ltctl diff against a real ltd", .serialized)
struct CtlDiffTests {
    @Test func sameSpecIsIdenticalInEveryStep() throws {
        let h = try DaemonProcess.launchForLtctl()
        try h.runColabToTheEnd("a")
        try h.runColabToTheEnd("b")
        let human = try h.ltctl(["diff", "a", "b"])
        #expect(human.status == 0, "\(human.stderr)")
        #expect(human.stdout.hasPrefix("12/12 steps bit-identical (float32, initial weights included)\n"), "\(human.stdout)")
        let json = try JSONParser.parse(try h.ltctl(["diff", "a", "b", "--json"]).stdout)
        #expect(json["identical"]?.boolValue == true)
        #expect(json["identical_steps"]?.intValue == 12)
        #expect(json["first_divergence"]?.isNull == true)
        #expect(json["fields_compared"]?.arrayValue?.contains(.string("slots.kernel.velocity")) == true)
    }

    @Test func differentLearningRateDivergesAtTheFirstUpdate() throws {
        let h = try DaemonProcess.launchForLtctl()
        try h.runColabToTheEnd("a")
        try h.startColab("b", extra: ["--learning-rate", "0.04"])
        try h.waitFinished("b")
        let result = try h.ltctl(["diff", "a", "b", "--json"])
        #expect(result.status == 1)
        let json = try JSONParser.parse(result.stdout)
        let first = try #require(json["first_divergence"])
        #expect(first["iteration"]?.intValue == 1)
        #expect(first["field"]?.stringValue == "w_after")
        #expect(first["a"]?.stringValue == nil && first["a"]?.doubleValue != nil)
        #expect((first["ulps"]?.intValue ?? 0) > 4)
        #expect(first["meaning"]?.stringValue?.contains("hyperparameter") == true)
        let human = try h.ltctl(["diff", "a", "b"])
        #expect(human.status == 1)
        #expect(human.stdout.hasPrefix("0/12 steps bit-identical"), "\(human.stdout)")
        #expect(human.stdout.contains("First divergence at iteration 1 (epoch 1, step 1), field w_after:"))
    }

    @Test func differentInitialWeightsAndStepCounts() throws {
        let h = try DaemonProcess.launchForLtctl()
        try h.runColabToTheEnd("a")
        try h.startColab("b", extra: ["--init-kernel", "0.25", "--epochs", "3"])
        try h.waitFinished("b")
        let result = try h.ltctl(["diff", "a", "b"])
        #expect(result.status == 1)
        #expect(result.stdout.contains("First divergence at the initial weights, field w_initial:"), "\(result.stdout)")
        #expect(result.stdout.contains("a has 12 steps, b has 9."))
        let missing = try h.ltctl(["diff", "a", "nosuch"])
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("nosuch"))
    }
}
