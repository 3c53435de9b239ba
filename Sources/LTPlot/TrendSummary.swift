/// One sentence that says what the RMSE chart shows, for readers who cannot see it: a screen reader, a braille
/// display, a log. Every chart of a run carries it (`compare --chart`, `watch`, the SVG's `<desc>`).
public enum TrendSummary {
    /// E.g. "validation RMSE fell from 18.77 to 12.62 over 12 steps; Keras's running RMSE rose within each of the
    /// 4 epochs, starting again lower at each new epoch, and ended at 13.40".
    /// - Parameters:
    ///   - keras: Keras's running RMSE per step; `validation`: the validation RMSE after each step;
    ///   - epochs: each step's epoch (1-based), the same length.
    public static func rmse(keras: [Double], validation: [Double], epochs: [Int]) -> String {
        let steps = max(keras.count, validation.count)
        guard steps > 0 else { return "no steps yet" }
        var parts: [String] = []
        if let first = validation.first(where: \.isFinite), let last = validation.last(where: \.isFinite) {
            parts.append("validation RMSE \(movement(first, last)) over \(steps) step\(steps == 1 ? "" : "s")")
        }
        let finiteKeras = keras.filter(\.isFinite)
        if let first = finiteKeras.first, let last = finiteKeras.last {
            // Within each epoch the running figure starts afresh: say how it moved inside the epochs.
            var rising = 0, falling = 0, restartsLower = 0
            var byEpoch: [(epoch: Int, first: Double, last: Double)] = []
            for (i, value) in keras.enumerated() where value.isFinite {
                let epoch = i < epochs.count ? epochs[i] : 1
                if let open = byEpoch.last, open.epoch == epoch {
                    byEpoch[byEpoch.count - 1].last = value
                } else {
                    if let previous = byEpoch.last, value < previous.last { restartsLower += 1 }
                    byEpoch.append((epoch, value, value))
                }
            }
            let counted = byEpoch.filter { $0.first != $0.last }
            for e in counted { if e.last > e.first { rising += 1 } else { falling += 1 } }
            if byEpoch.count <= 1 {
                parts.append("Keras's running RMSE \(movement(first, last))")
            } else {
                let total = byEpoch.count
                let within: String
                if rising == total { within = "rose within each of the \(total) epochs" } else if falling == total {
                    within = "fell within each of the \(total) epochs"
                } else {
                    within = "rose within \(rising) and fell within \(falling) of the \(total) epochs"
                }
                let restarts = restartsLower == total - 1 ? ", starting again lower at each new epoch"
                    : restartsLower > 0 ? ", starting again lower at \(restartsLower) of the \(total - 1) new epochs" : ""
                parts.append("Keras's running RMSE \(within)\(restarts), and ended at \(text(last))")
            }
        }
        return parts.isEmpty ? "no finite RMSE to describe" : parts.joined(separator: "; ")
    }

    static func movement(_ first: Double, _ last: Double) -> String {
        let a = text(first), b = text(last)
        if a == b { return "stayed at \(a)" }
        return "\(last < first ? "fell" : "rose") from \(a) to \(b)"
    }

    static func text(_ value: Double) -> String { NumberText.fixed(value, decimals: 2) }
}
