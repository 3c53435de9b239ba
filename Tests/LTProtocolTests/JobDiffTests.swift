import Testing
@testable import LTProtocol

@Suite struct JobDiffTests {
    @Test func ulpDistanceCountsRepresentableValues() {
        #expect(JobDiff.ulpDistance(Float(1), Float(1)) == 0)
        #expect(JobDiff.ulpDistance(Float(1), Float(1).nextUp) == 1)
        #expect(JobDiff.ulpDistance(Float(1).nextDown, Float(1).nextUp) == 2)
        #expect(JobDiff.ulpDistance(Float(0), -Float(0)) == 0)
        #expect(JobDiff.ulpDistance(Float.leastNonzeroMagnitude, -Float.leastNonzeroMagnitude) == 2)
        #expect(JobDiff.ulpDistance(Float.nan, Float(1)) == nil)
        #expect(JobDiff.ulpDistance(-Float.infinity, Float.infinity) == 2 * UInt64(Float.infinity.bitPattern))
        #expect(JobDiff.ulpDistance(-Double.greatestFiniteMagnitude, Double.greatestFiniteMagnitude) != nil)
        #expect(JobDiff.ulpDistance(Double(1), Double(1).nextUp) == 1)
    }

    private func event(_ text: String) throws -> Event { try Event(line: Array(text.utf8)) }

    @Test func oneULPInTheUpdateIsRoundingAndNamesThePlatform() throws {
        let startA = try event(#"{"type":"start","job":"a","seq":1,"precision":"float32","w":0.5,"b":0,"platform":{"keras":"3.15.1","device":"GPU:0"}}"#)
        let startB = try event(#"{"type":"start","job":"b","seq":1,"precision":"float32","w":0.5,"b":0}"#)
        let w = Float(0.6581139)
        let stepA = try event(#"{"type":"step","job":"a","seq":2,"epoch":1,"step":1,"iteration":1,"batch":{"size":1,"indices":[0]},"w_before":0.5,"w_after":\#(w),"loss":3}"#)
        let stepB = try event(#"{"type":"step","job":"b","seq":2,"epoch":1,"step":1,"iteration":1,"batch":{"size":1,"indices":[0]},"w_before":0.5,"w_after":\#(w.nextUp),"loss":3,"grad_w":1}"#)
        let diff = JobDiff(startA: startA, stepsA: [stepA], startB: startB, stepsB: [stepB])
        #expect(!diff.identical)
        let first = try #require(diff.firstDivergence)
        #expect(first.field == "w_after" && first.ulps == 1 && first.iteration == 1)
        #expect(first.meaning.contains("rounded differently") && first.meaning.contains("GPU"))
        #expect(diff.fieldsNotCompared == ["grad_w"])
        #expect(diff.fieldsCompared.contains("rows") && diff.fieldsCompared.contains("loss"))
    }

    @Test func differentRowsComeFirst() throws {
        let start = try event(#"{"type":"start","job":"a","seq":1,"w":0.5,"b":0}"#)
        let stepA = try event(#"{"type":"step","job":"a","seq":2,"iteration":1,"batch":{"size":2,"indices":[0,1]},"w_after":1}"#)
        let stepB = try event(#"{"type":"step","job":"b","seq":2,"iteration":1,"batch":{"size":2,"range":[1,3]},"w_after":2}"#)
        let diff = JobDiff(startA: start, stepsA: [stepA], startB: start, stepsB: [stepB])
        #expect(diff.firstDivergence?.field == "rows")
        #expect(diff.divergentFields == ["rows", "w_after"])
        #expect(diff.json(a: "a", b: "b")["first_divergence"]?["fields"]?.arrayValue?.count == 2)
    }
}
