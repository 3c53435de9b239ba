/// Which steps to draw when a job has too many to show them all.
enum StepSampling {
    /// Indices into `steps` (sorted, unique, at most `limit` when `limit` ≥ 2) that always hold the first and the last
    /// step and as many epoch ends as fit in half the budget; the rest of the budget is spread evenly.
    static func indices(of steps: [StepPoint], limit: Int) -> [Int] {
        let n = steps.count
        guard n > 0 else { return [] }
        let budget = max(2, limit)
        guard n > budget else { return Array(0..<n) }
        var keep = Set([0, n - 1])
        var epochEnds: [Int] = []
        for i in 0..<n where i == n - 1 || steps[i + 1].epoch != steps[i].epoch {
            epochEnds.append(i)
        }
        keep.formUnion(evenly(epochEnds, count: budget / 2))
        let remaining = budget - keep.count
        if remaining > 0 {
            keep.formUnion(evenly(Array(0..<n), count: remaining))
        }
        return keep.sorted()
    }

    /// `count` elements spread evenly over `items`, first and last included.
    static func evenly(_ items: [Int], count: Int) -> [Int] {
        guard items.count > count else { return items }
        guard count >= 2 else { return count == 1 ? [items[items.count - 1]] : [] }
        var out: [Int] = []
        out.reserveCapacity(count)
        let last = items.count - 1
        for k in 0..<count {
            let position = (Double(k) * Double(last) / Double(count - 1)).rounded()
            out.append(items[min(last, max(0, Int(position)))])
        }
        return out
    }
}
