import LTEngine
import Testing
@testable import LTProtocol

@Suite struct ClassBoardTests {
    private func job(_ fullName: String, _ state: JobState, val: Double? = nil, rmse: Double? = nil, iteration: Int = 12,
                     message: String? = nil) -> JobStatus {
        let parts = fullName.split(separator: "/")
        return JobStatus(job: String(parts[1]), state: state, owner: 1000, created: "2026-12-02T10:00:00Z",
                         iteration: iteration, stepsPerEpoch: 3, epochs: 4, totalSteps: 12, seq: 20, w: 0, b: 0,
                         rmse: rmse, valRmse: val, message: message, precision: .float32, fullName: fullName)
    }

    private func names(_ rows: [ClassBoard.Row]) -> [String] { rows.map { $0.status.fullName ?? "?" } }

    @Test func finishedRunsAreRankedByValidationRMSEThenTheRestByStanding() {
        let jobs = [
            job("dave/boom", .diverged, val: .infinity, message: "the running loss became inf"),
            job("erin/live", .running, val: 20, iteration: 3),
            job("bob/job1", .finished, val: 12.5),
            job("carol/stop", .cancelled, val: 1),
            job("alice/job1", .finished, val: 8.25),
            job("frank/bad", .damaged),
            job("gina/wait", .paused, val: 5, iteration: 6),
            job("hal/noval", .finished, val: nil, rmse: 3),
            job("ivy/oops", .failed, message: "publisher lost"),
        ]
        let rows = ClassBoard.rank(jobs, by: .valRMSE)
        #expect(names(rows) == ["alice/job1", "bob/job1", "hal/noval", "gina/wait", "erin/live", "carol/stop",
                                "dave/boom", "ivy/oops", "frank/bad"])
        #expect(rows.map(\.rank) == [1, 2, nil, nil, nil, nil, nil, nil, nil])
        #expect(rows.map(\.standing) == [.finished, .finished, .unmeasured, .going, .going, .cancelled, .failed, .failed, .damaged])
    }

    @Test func equalValuesShareARankAndGoByName() {
        let rows = ClassBoard.rank([job("zed/a", .finished, val: 2), job("amy/a", .finished, val: 2),
                                    job("bo/a", .finished, val: 1), job("cy/a", .finished, val: 3)], by: .valRMSE)
        #expect(names(rows) == ["bo/a", "amy/a", "zed/a", "cy/a"])
        #expect(rows.map(\.rank) == [1, 2, 2, 4])
    }

    @Test func nonFiniteMetricsAreNotRankedAndGoLastInTheirGroup() {
        let rows = ClassBoard.rank([job("a/nan", .finished, val: .nan), job("b/ok", .finished, val: 9),
                                    job("c/run", .running, val: .nan), job("d/run", .running, val: 4)], by: .valRMSE)
        #expect(names(rows) == ["b/ok", "a/nan", "d/run", "c/run"])
        #expect(rows.map(\.rank) == [1, nil, nil, nil])
    }

    @Test func rmseRanksByKerasRMSE() {
        let rows = ClassBoard.rank([job("a/x", .finished, val: 1, rmse: 9), job("b/x", .finished, val: 9, rmse: 1)], by: .rmse)
        #expect(names(rows) == ["b/x", "a/x"])
        #expect(rows.map(\.rank) == [1, 2])
    }

    @Test func theOtherOrdersOnlySort() {
        let jobs = [job("bob/b", .finished, val: 1, iteration: 12), job("alice/z", .running, iteration: 4),
                    job("carol/a", .diverged, iteration: 7), job("alice/a", .finished, val: 2, iteration: 12)]
        #expect(names(ClassBoard.rank(jobs, by: .iteration)) == ["alice/a", "bob/b", "carol/a", "alice/z"])
        #expect(names(ClassBoard.rank(jobs, by: .name)) == ["alice/a", "carol/a", "bob/b", "alice/z"])
        #expect(names(ClassBoard.rank(jobs, by: .owner)) == ["alice/a", "alice/z", "bob/b", "carol/a"])
        #expect(names(ClassBoard.rank(jobs, by: .state)) == ["alice/z", "alice/a", "bob/b", "carol/a"])
        #expect(ClassBoard.rank(jobs, by: .state).allSatisfy { $0.rank == nil })
        #expect(ClassBoard.rank(jobs, by: .name).map(\.standing) == [.finished, .failed, .finished, .going])
    }

    @Test func anEmptyClassHasAnEmptyBoard() {
        #expect(ClassBoard.rank([], by: .valRMSE).isEmpty)
    }
}

@Suite struct DurationTextTests {
    @Test func readsAWholeNumberWithAUnit() {
        #expect(DurationText.seconds("14d") == 14 * 86_400)
        #expect(DurationText.seconds("12h") == 43_200)
        #expect(DurationText.seconds("30m") == 1_800)
        #expect(DurationText.seconds("45s") == 45)
        #expect(DurationText.seconds("90") == 90)
        #expect(DurationText.seconds("0d") == 0)
    }

    @Test func refusesWhatIsNotADuration() {
        for text in ["", "d", "1.5h", "-3d", "+3d", "3w", "3 d", "3dd", "١٢h", "99999999999999999999d", "40000d"] {
            #expect(DurationText.seconds(text) == nil, "\(text)")
        }
    }

    @Test func describesInTheLargestUnitThatDivides() {
        #expect(DurationText.describe(14 * 86_400) == "14d")
        #expect(DurationText.describe(7_200) == "2h")
        #expect(DurationText.describe(90) == "90s")
        #expect(DurationText.describe(120) == "2m")
        #expect(DurationText.describe(0) == "0s")
        for seconds in [1, 59, 61, 3_600, 86_399, 86_400 * 30] { #expect(DurationText.seconds(DurationText.describe(seconds)) == seconds) }
    }
}
