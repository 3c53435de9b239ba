import Testing
@testable import LTPlot

@Suite struct GeometryTests {
    @Test func ticksAreOneTwoFiveTimesAPowerOfTen() {
        let a = Ticks(lo: 5, hi: 38.2)
        #expect(a.step == 10 && a.lower == 0 && a.upper == 40)
        let b = Ticks(lo: 0, hi: 12)
        #expect(b.step == 2 && b.values == [0, 2, 4, 6, 8, 10, 12])
        let c = Ticks(lo: 0.0013, hi: 0.0091, target: 4)
        #expect(c.step == 0.002)
        #expect(c.values.map { NumberText.tick($0, step: c.step) } == ["0", "0.002", "0.004", "0.006", "0.008", "0.010"])
        let d = Ticks(lo: 3, hi: 3)
        #expect(d.lower < 3 && d.upper > 3)
        let e = Ticks(lo: -.infinity, hi: .nan)
        #expect(e.values.allSatisfy(\.isFinite) && !e.values.isEmpty)
        for (lo, hi) in [(0.0, 1.0), (-7.3, 1234.5), (1e-9, 3e-9), (2e8, 9e9)] {
            let t = Ticks(lo: lo, hi: hi)
            var m = t.step
            while m >= 10 { m /= 10 }
            while m < 1 { m *= 10 }
            #expect([1, 2, 5].contains { abs(m - Double($0)) < 1e-9 }, "step \(t.step)")
            #expect(t.lower <= lo && t.upper >= hi && (3...12).contains(t.values.count))
        }
    }

    @Test func numbersAreWrittenWithoutFoundation() {
        #expect(NumberText.compact(12.5) == "12.5")
        #expect(NumberText.compact(3.0) == "3")
        #expect(NumberText.compact(-0.004) == "0")
        #expect(NumberText.compact(-1.236, decimals: 2) == "-1.24")
        #expect(NumberText.compact(.nan) == "0")
        #expect(NumberText.fixed(0.05, decimals: 3) == "0.050")
        #expect(NumberText.short(402.98) == "403")
        #expect(NumberText.short(20.0678) == "20.07")
        #expect(NumberText.short(1.2e9) == "1.2e+09")
        #expect(NumberText.short(0.00012) == "1.2e-04")
        #expect(NumberText.tick(4e7, step: 1e7) == "4e+07")
    }

    @Test func marchingSquaresTraceACircle() {
        // f = w² + b² has the circle of radius √1.1 as its level-1.1 contour.
        let grid = ContourGrid(columns: 41, rows: 41, x: (-2, 2), y: (-2, 2)) { $0 * $0 + $1 * $1 }
        let segments = grid.segments(at: 1.1)  // no grid point lies exactly on it
        #expect(segments.count > 40)
        for (p, q) in segments {
            for point in [p, q] {
                let r = (point.x * point.x + point.y * point.y).squareRoot()
                #expect(abs(r - 1.1.squareRoot()) < 0.02, "point \(point) is at radius \(r)")
            }
        }
        // Every segment end is shared by exactly one other segment: the contour is closed.
        var ends: [String: Int] = [:]
        for (p, q) in segments {
            for point in [p, q] { ends["\(NumberText.compact(point.x, decimals: 9)),\(NumberText.compact(point.y, decimals: 9))", default: 0] += 1 }
        }
        #expect(ends.values.allSatisfy { $0 == 2 })
        #expect(grid.segments(at: 100).isEmpty)
    }

    @Test func clippingKeepsTheInsidePart() {
        let clipped = Clip.line(w: 2, b: 0, x0: 0, x1: 10, y0: 0, y1: 10)
        #expect(clipped?.0.x == 0 && clipped?.1.x == 5 && clipped?.1.y == 10)
        #expect(Clip.line(w: 0, b: 20, x0: 0, x1: 10, y0: 0, y1: 10) == nil)
        #expect(Clip.line(w: .nan, b: 0, x0: 0, x1: 10, y0: 0, y1: 10) == nil)
    }

    @Test func meanSquaredErrorMatchesTheDirectSum() throws {
        let run = try GoldenRun.load()
        let ls = LeastSquares(x: run.x, y: run.y)
        for (w, b) in [(0.5, 0.0), (3.0, 2.0), (-1.0, 40.0)] {
            let direct = zip(run.x, run.y).map { (w * $0 + b - $1) * (w * $0 + b - $1) }.reduce(0, +) / Double(run.x.count)
            #expect(abs(ls.mse(w: w, b: b) - direct) < 1e-9 * max(1, direct))
        }
        // Keras's first printed loss of the Colab example, with kernel 0.5 and bias 0: 402.98.
        #expect(abs(ls.mse(w: 0.5, b: 0) - 402.98) < 0.005)
    }
}
