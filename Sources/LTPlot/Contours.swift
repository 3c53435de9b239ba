/// Contour lines by marching squares on a regular grid of values.
struct ContourGrid {
    let columns: Int  // grid points along x
    let rows: Int  // grid points along y
    let x: (lo: Double, hi: Double)
    let y: (lo: Double, hi: Double)
    /// values[row * columns + column], row 0 at y.lo.
    let values: [Double]

    init(columns: Int, rows: Int, x: (lo: Double, hi: Double), y: (lo: Double, hi: Double), _ f: (Double, Double) -> Double) {
        self.columns = max(2, columns)
        self.rows = max(2, rows)
        self.x = x
        self.y = y
        var v: [Double] = []
        v.reserveCapacity(self.columns * self.rows)
        for r in 0..<self.rows {
            let yv = y.lo + (y.hi - y.lo) * Double(r) / Double(self.rows - 1)
            for c in 0..<self.columns {
                let xv = x.lo + (x.hi - x.lo) * Double(c) / Double(self.columns - 1)
                v.append(f(xv, yv))
            }
        }
        values = v
    }

    private func point(column: Double, row: Double) -> (x: Double, y: Double) {
        (x.lo + (x.hi - x.lo) * column / Double(columns - 1), y.lo + (y.hi - y.lo) * row / Double(rows - 1))
    }

    /// Line segments (in data coordinates) where the grid crosses `level`.
    /// Cells with a non-finite corner are skipped; the ambiguous saddles are resolved by the cell's mean.
    func segments(at level: Double) -> [((x: Double, y: Double), (x: Double, y: Double))] {
        var out: [((x: Double, y: Double), (x: Double, y: Double))] = []
        for r in 0..<(rows - 1) {
            for c in 0..<(columns - 1) {
                // Corners counter-clockwise from bottom-left: 0 (c,r), 1 (c+1,r), 2 (c+1,r+1), 3 (c,r+1).
                let v0 = values[r * columns + c]
                let v1 = values[r * columns + c + 1]
                let v2 = values[(r + 1) * columns + c + 1]
                let v3 = values[(r + 1) * columns + c]
                guard v0.isFinite, v1.isFinite, v2.isFinite, v3.isFinite else { continue }
                var index = 0
                if v0 > level { index |= 1 }
                if v1 > level { index |= 2 }
                if v2 > level { index |= 4 }
                if v3 > level { index |= 8 }
                if index == 0 || index == 15 { continue }
                let cc = Double(c)
                let rr = Double(r)
                func t(_ a: Double, _ b: Double) -> Double { a == b ? 0.5 : (level - a) / (b - a) }
                // Crossing points on the four edges: bottom (0-1), right (1-2), top (3-2), left (0-3).
                let bottom = point(column: cc + t(v0, v1), row: rr)
                let right = point(column: cc + 1, row: rr + t(v1, v2))
                let top = point(column: cc + t(v3, v2), row: rr + 1)
                let left = point(column: cc, row: rr + t(v0, v3))
                switch index {
                case 1, 14: out.append((left, bottom))
                case 2, 13: out.append((bottom, right))
                case 3, 12: out.append((left, right))
                case 4, 11: out.append((right, top))
                case 6, 9: out.append((bottom, top))
                case 7, 8: out.append((left, top))
                case 5, 10:
                    let centreAbove = (v0 + v1 + v2 + v3) / 4 > level
                    // index 5: corners 0 and 2 above. If the centre is above too, they connect and 1, 3 are cut off.
                    if (index == 5) == centreAbove {
                        out.append((left, top))
                        out.append((bottom, right))
                    } else {
                        out.append((left, bottom))
                        out.append((right, top))
                    }
                default: break
                }
            }
        }
        return out
    }
}

enum ContourChains {
    /// Joins segments that share an end (compared by `key`) into polylines, so a contour is written once per vertex.
    static func join(_ segments: [(Point, Point)], key: (Point) -> String) -> [[Point]] {
        var byEnd: [String: [Int]] = [:]
        for (i, s) in segments.enumerated() {
            byEnd[key(s.0), default: []].append(i)
            byEnd[key(s.1), default: []].append(i)
        }
        var used = Array(repeating: false, count: segments.count)
        var chains: [[Point]] = []
        func next(from p: Point) -> Point? {
            for i in byEnd[key(p)] ?? [] where !used[i] {
                used[i] = true
                return key(segments[i].0) == key(p) ? segments[i].1 : segments[i].0
            }
            return nil
        }
        for i in segments.indices where !used[i] {
            used[i] = true
            var forward = [segments[i].0, segments[i].1]
            while let last = forward.last, let p = next(from: last) { forward.append(p) }
            var backward: [Point] = []
            while let first = backward.last ?? forward.first, let p = next(from: first) { backward.append(p) }
            chains.append(backward.reversed() + forward)
        }
        return chains
    }
}
