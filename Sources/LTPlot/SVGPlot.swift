/// One self-contained SVG picture of a training run: no scripts, no external references.
///
/// Three panels:
/// 1. the data and the line: the training points, the line after each step (faint, light to dark in iteration order,
///    or one animated line), the final line and the least-squares line (dashed);
/// 2. the curves against iteration: Keras's running RMSE, the batch's own RMSE and the validation RMSE after the
///    update, with the epoch boundaries;
/// 3. the path of (w, b) over contour lines of the training MSE, with the optimum.
///
/// Elements carry a `class` naming their role (`point`, `step-line`, `final-line`, `optimum-line`, `curve-keras`, …),
/// so tests and style sheets can find them.
public enum SVGPlot {
    /// At most this many steps are drawn per panel; the first, the last and the epoch ends are always among them.
    public static let maxDrawnSteps = 500
    /// At most this many data points are drawn, evenly spread over the rows.
    public static let maxDrawnPoints = 500

    /// The SVG document for `run`.
    /// - Parameters:
    ///   - animate: draw one line (and a cursor on the curves and the path) that steps through the iterations with SMIL
    ///     instead of every line at once.
    ///   - width: the width in pixels; the picture scales, its layout does not change.
    public static func render(_ run: TrainingRun, animate: Bool = false, width: Int = 960) -> String {
        var picture = Picture(run: run, animate: animate)
        return picture.render(width: max(320, min(width, 20_000)))
    }
}

/// The colours that carry meaning come from Okabe & Ito's palette, which stays distinguishable with every common
/// colour vision deficiency: Keras's RMSE vermillion against the validation RMSE blue, the optimum bluish green, the
/// epochs reddish purple, the lines per step from yellow (early) to vermillion (late). Greys are for structure.
private enum Palette {
    static let background = "#ffffff"
    static let ink = "#1a202c"
    static let muted = "#4a5568"
    static let grid = "#e2e8f0"
    static let point = "#0072b2"
    static let stepEarly = "#f0e442"
    static let stepLate = "#d55e00"
    static let optimum = "#009e73"
    static let keras = "#d55e00"
    static let batch = "#999999"
    static let validation = "#0072b2"
    static let contour = "#718096"
    static let epoch = "#cc79a7"
}

private struct Picture {
    let run: TrainingRun
    let animate: Bool
    /// Indices into run.steps that are drawn.
    let drawn: [Int]
    let optimum: (w: Double, b: Double)?
    let data: LeastSquares
    var svg = XMLWriter()
    var notes: [String] = []
    var clipCount = 0

    /// The layout is in a 960-unit-wide coordinate system; `width` only scales it.
    static let layoutWidth = 960.0
    static let layoutHeight = 800.0

    init(run: TrainingRun, animate: Bool) {
        self.run = run
        self.animate = animate
        drawn = StepSampling.indices(of: run.steps, limit: SVGPlot.maxDrawnSteps)
        data = LeastSquares(x: run.x, y: run.y)
        if let given = run.optimum, given.w.isFinite, given.b.isFinite {
            optimum = given
        } else {
            optimum = data.optimum
        }
    }

    /// The time of one animation frame, so that short runs are easy to follow and long ones stay under 30 s.
    var frameDuration: Double {
        let frames = Double(max(1, drawn.count))
        return min(0.8, max(0.06, 30 / frames))
    }

    /// Fraction 0…1 of a drawn step along the run, for the light-to-dark colouring.
    func progress(_ position: Int) -> Double {
        drawn.count > 1 ? Double(position) / Double(drawn.count - 1) : 1
    }

    mutating func render(width: Int) -> String {
        let w = Self.layoutWidth
        let h = Self.layoutHeight
        let scale = Double(width) / w
        svg.raw("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n")
        svg.start("svg", [
            "xmlns": "http://www.w3.org/2000/svg", "version": "1.1",
            "width": String(width), "height": NumberText.compact(h * scale, decimals: 0),
            "viewBox": "0 0 \(NumberText.compact(w)) \(NumberText.compact(h))",
            "font-family": "DejaVu Sans, Helvetica, Arial, sans-serif", "font-size": "12", "fill": Palette.ink,
        ])
        svg.leaf("title", [:], text: "Training run \(run.title): \(run.settings)")
        let trend = TrendSummary.rmse(keras: run.steps.map(\.kerasRmse), validation: run.steps.map(\.valRmse), epochs: run.steps.map(\.epoch))
        svg.leaf("desc", [:], text: "Three panels: the data with the line after each step, the RMSE curves per iteration, and the path of (w, b) over contour lines of the training MSE. The curves: \(trend).")
        svg.empty("rect", ["class": "background", "x": "0", "y": "0", "width": NumberText.compact(w), "height": NumberText.compact(h), "fill": Palette.background])
        svg.leaf("text", ["class": "title", "x": "24", "y": "32", "font-size": "20", "font-weight": "bold"], text: run.title)
        // Long settings get a smaller font, and past that are cut, so the line never runs off the picture.
        let room = w - 48
        let glyph = 0.6  // a generous average advance of a sans-serif glyph, in ems
        var settings = run.settings
        let fontSize = max(9, min(13, room / (glyph * Double(max(1, settings.count)))))
        let fitting = Int(room / (glyph * 9))
        if fontSize <= 9 && settings.count > fitting { settings = String(settings.prefix(max(1, fitting - 1))) + "…" }
        svg.leaf("text", ["class": "settings", "x": "24", "y": "54", "font-size": NumberText.compact(fontSize, decimals: 1), "fill": Palette.muted], text: settings)

        dataPanel(Frame(x: 0, y: 64, width: w / 2, height: 390))
        pathPanel(Frame(x: w / 2, y: 64, width: w / 2, height: 390))
        curvesPanel(Frame(x: 0, y: 454, width: w, height: 318))

        let stepsDrawn = "\(run.steps.count) step\(run.steps.count == 1 ? "" : "s")"
            + (drawn.count < run.steps.count ? ", \(drawn.count) of them drawn (first, last, epoch ends and evenly spaced)." : ".")
        let caption = ([stepsDrawn] + notes).joined(separator: " ")
        svg.leaf("text", ["class": "note", "x": "24", "y": NumberText.compact(h - 12), "font-size": "11", "fill": Palette.muted], text: caption)
        return svg.finish()
    }

    // MARK: - Shared pieces

    mutating func clipPath(_ frame: Frame) -> String {
        clipCount += 1
        let id = "plot-area-\(clipCount)"
        svg.start("clipPath", ["id": id])
        // A little wider than the plot area: lines are already cut to the axes' range, and this leaves room for
        // the markers at its edges. It only hides animation frames that are parked outside.
        let margin = 6.0
        svg.empty("rect", ["x": c(frame.x - margin), "y": c(frame.y - margin), "width": c(frame.width + 2 * margin), "height": c(frame.height + 2 * margin)])
        svg.end()
        return "url(#\(id))"
    }

    func c(_ v: Double) -> String { NumberText.compact(v) }

    /// The plot area's border, grid lines, ticks, tick labels and the two axis labels.
    mutating func axes(_ frame: Frame, xs: LinearScale, ys: LinearScale, xTicks: Ticks, yTicks: Ticks, xLabel: String, yLabel: String) {
        svg.start("g", ["class": "axes", "font-size": "11"])
        for v in xTicks.values where xs.contains(v) {
            let px = c(xs(v))
            svg.empty("line", ["class": "grid", "x1": px, "y1": c(frame.y), "x2": px, "y2": c(frame.maxY), "stroke": Palette.grid, "stroke-width": "1"])
            svg.empty("line", ["class": "tick", "x1": px, "y1": c(frame.maxY), "x2": px, "y2": c(frame.maxY + 5), "stroke": Palette.muted])
            svg.leaf("text", ["class": "tick-label", "x": px, "y": c(frame.maxY + 18), "text-anchor": "middle", "fill": Palette.muted], text: NumberText.tick(v, step: xTicks.step))
        }
        for v in yTicks.values where ys.contains(v) {
            let py = c(ys(v))
            svg.empty("line", ["class": "grid", "x1": c(frame.x), "y1": py, "x2": c(frame.maxX), "y2": py, "stroke": Palette.grid, "stroke-width": "1"])
            svg.empty("line", ["class": "tick", "x1": c(frame.x - 5), "y1": py, "x2": c(frame.x), "y2": py, "stroke": Palette.muted])
            svg.leaf("text", ["class": "tick-label", "x": c(frame.x - 8), "y": c(ys(v) + 4), "text-anchor": "end", "fill": Palette.muted], text: NumberText.tick(v, step: yTicks.step))
        }
        svg.empty("rect", ["class": "plot-area", "x": c(frame.x), "y": c(frame.y), "width": c(frame.width), "height": c(frame.height), "fill": "none", "stroke": Palette.muted])
        svg.leaf("text", ["class": "axis-label", "x": c(frame.x + frame.width / 2), "y": c(frame.maxY + 36), "text-anchor": "middle", "font-size": "12"], text: xLabel)
        let ly = frame.y + frame.height / 2
        svg.leaf("text", ["class": "axis-label", "x": "0", "y": "0", "text-anchor": "middle", "font-size": "12",
                          "transform": "translate(\(c(frame.x - 46)) \(c(ly))) rotate(-90)"], text: yLabel)
        svg.end()
    }

    enum Swatch { case dot(String), line(String, dash: String?), cross(String), ring(String) }

    enum LegendPlacement {
        /// Inside the plot area, in the corner that covers the fewest of these pixels.
        case corner(avoiding: [Point])
        /// Outside the plot area, top-left at this position.
        case at(x: Double, y: Double)
    }

    /// A legend box with one line per entry.
    mutating func legend(_ frame: Frame, _ placement: LegendPlacement, _ entries: [(Swatch, String)]) {
        guard !entries.isEmpty else { return }
        let longest = entries.map { $0.1.count }.max() ?? 0
        let boxWidth = min(frame.width - 12, 42 + Double(longest) * 6.5)
        let boxHeight = 8 + Double(entries.count) * 16
        var x0 = frame.x + 6
        var y0 = frame.y + 6
        switch placement {
        case .at(let x, let y):
            x0 = x
            y0 = y
        case .corner(let avoid):
            let corners = [(frame.x + 6, frame.y + 6), (frame.maxX - boxWidth - 6, frame.y + 6),
                           (frame.maxX - boxWidth - 6, frame.maxY - boxHeight - 6), (frame.x + 6, frame.maxY - boxHeight - 6)]
            var best = Int.max
            for (cx, cy) in corners {
                let covered = avoid.reduce(0) { n, p in
                    n + (p.x >= cx - 6 && p.x <= cx + boxWidth + 6 && p.y >= cy - 6 && p.y <= cy + boxHeight + 6 ? 1 : 0)
                }
                if covered < best {
                    best = covered
                    x0 = cx
                    y0 = cy
                }
            }
        }
        svg.start("g", ["class": "legend", "font-size": "11"])
        svg.empty("rect", ["x": c(x0), "y": c(y0), "width": c(boxWidth), "height": c(boxHeight), "fill": Palette.background, "fill-opacity": "0.88", "stroke": Palette.grid])
        for (k, entry) in entries.enumerated() {
            let cy = y0 + 12 + Double(k) * 16
            let sx = x0 + 8
            switch entry.0 {
            case .dot(let colour):
                svg.empty("circle", ["class": "legend-swatch", "cx": c(sx + 10), "cy": c(cy), "r": "4", "fill": colour])
            case .ring(let colour):
                svg.empty("circle", ["class": "legend-swatch", "cx": c(sx + 10), "cy": c(cy), "r": "4", "fill": "none", "stroke": colour, "stroke-width": "2"])
            case .cross(let colour):
                svg.empty("path", ["class": "legend-swatch", "d": crossPath(sx + 10, cy, 5), "stroke": colour, "stroke-width": "2.5", "fill": "none"])
            case .line(let colour, let dash):
                if let dash {
                    svg.empty("line", ["class": "legend-swatch", "x1": c(sx), "y1": c(cy), "x2": c(sx + 20), "y2": c(cy), "stroke": colour, "stroke-width": "2.5", "stroke-dasharray": dash])
                } else {
                    svg.empty("line", ["class": "legend-swatch", "x1": c(sx), "y1": c(cy), "x2": c(sx + 20), "y2": c(cy), "stroke": colour, "stroke-width": "2.5"])
                }
            }
            svg.leaf("text", ["class": "legend-label", "x": c(sx + 28), "y": c(cy + 4)], text: entry.1)
        }
        svg.end()
    }

    func crossPath(_ x: Double, _ y: Double, _ r: Double) -> String {
        "M\(c(x - r)) \(c(y - r))L\(c(x + r)) \(c(y + r))M\(c(x - r)) \(c(y + r))L\(c(x + r)) \(c(y - r))"
    }

    mutating func panelTitle(_ frame: Frame, _ text: String) {
        svg.leaf("text", ["class": "panel-title", "x": c(frame.x), "y": c(frame.y - 10), "font-size": "14", "font-weight": "bold"], text: text)
    }

    /// A line-equation label: "y = 3.01x + 1.94".
    func equation(_ w: Double, _ b: Double) -> String {
        let sign = b < 0 ? "−" : "+"
        return "y = \(NumberText.short(w))x \(sign) \(NumberText.short(abs(b)))"
    }

    // MARK: - Panel 1: the data and the line

    mutating func dataPanel(_ outer: Frame) {
        let frame = outer.inset(left: 70, top: 34, right: 18, bottom: 50)
        let finitePairs = zip(run.x, run.y).filter { $0.0.isFinite && $0.1.isFinite }
        let skipped = min(run.x.count, run.y.count) - finitePairs.count
        if skipped > 0 { notes.append("\(skipped) data point\(skipped == 1 ? "" : "s") with a non-finite value not drawn.") }
        let pairs = StepSampling.evenly(Array(finitePairs.indices), count: SVGPlot.maxDrawnPoints).map { finitePairs[$0] }
        if pairs.count < finitePairs.count { notes.append("\(pairs.count) of the \(finitePairs.count) data points drawn, evenly spread.") }
        // The axes cover every point, drawn or not.
        let xs0 = finitePairs.map(\.0)
        var ys0 = finitePairs.map(\.1)
        let xTicks = Ticks(lo: xs0.min() ?? 0, hi: xs0.max() ?? 1)
        // The final and the least-squares lines must fit; the earlier ones may leave the panel and are clipped.
        let last = run.steps.last.map { (w: $0.wAfter, b: $0.bAfter) }
        for line in [last, optimum].compactMap({ $0 }) where line.w.isFinite && line.b.isFinite {
            for v in [line.w * xTicks.lower + line.b, line.w * xTicks.upper + line.b] where v.isFinite { ys0.append(v) }
        }
        let yTicks = Ticks(lo: ys0.min() ?? 0, hi: ys0.max() ?? 1)
        let xs = LinearScale(domain: (xTicks.lower, xTicks.upper), range: (frame.x, frame.maxX))
        let ys = LinearScale(domain: (yTicks.lower, yTicks.upper), range: (frame.maxY, frame.y))

        svg.start("g", ["class": "panel", "id": "panel-data"])
        panelTitle(frame, "The data and the line")
        axes(frame, xs: xs, ys: ys, xTicks: xTicks, yTicks: yTicks, xLabel: "x", yLabel: "y")
        let clip = clipPath(frame)
        svg.start("g", ["clip-path": clip])

        func segment(_ w: Double, _ b: Double) -> (Point, Point)? {
            guard let (p, q) = Clip.line(w: w, b: b, x0: xTicks.lower, x1: xTicks.upper, y0: yTicks.lower, y1: yTicks.upper) else { return nil }
            return ((xs(p.x), ys(p.y)), (xs(q.x), ys(q.y)))
        }

        // Pixels the legend should not hide: the points and samples along every line drawn.
        var occupied: [Point] = []
        func occupy(_ segment: (Point, Point)) {
            for k in 0...24 {
                let t = Double(k) / 24
                occupied.append((segment.0.x + (segment.1.x - segment.0.x) * t, segment.0.y + (segment.1.y - segment.0.y) * t))
            }
        }
        var nonFinite = 0
        if animate {
            // One line whose ends jump from step to step; outside the panel it becomes a point outside the clip.
            var frames: [(Point, Point)] = []
            for i in drawn {
                let s = run.steps[i]
                if !(s.wAfter.isFinite && s.bAfter.isFinite) { nonFinite += 1 }
                frames.append(segment(s.wAfter, s.bAfter) ?? ((-10, -10), (-10, -10)))
            }
            if let first = frames.first {
                svg.start("line", ["class": "animated-line", "x1": c(first.0.x), "y1": c(first.0.y), "x2": c(first.1.x), "y2": c(first.1.y),
                                   "stroke": Palette.stepLate, "stroke-width": "2.5"])
                animateValues("x1", frames.map { $0.0.x })
                animateValues("y1", frames.map { $0.0.y })
                animateValues("x2", frames.map { $0.1.x })
                animateValues("y2", frames.map { $0.1.y })
                svg.end()
            }
        } else {
            svg.start("g", ["class": "step-lines", "stroke-width": "1.2"])
            for (position, i) in drawn.enumerated() {
                let s = run.steps[i]
                guard s.wAfter.isFinite, s.bAfter.isFinite else { nonFinite += 1; continue }
                guard let (p, q) = segment(s.wAfter, s.bAfter) else { continue }
                occupy((p, q))
                let t = progress(position)
                svg.empty("line", ["class": "step-line", "x1": c(p.x), "y1": c(p.y), "x2": c(q.x), "y2": c(q.y),
                                   "stroke": Colour.mix(Palette.stepEarly, Palette.stepLate, t), "stroke-opacity": NumberText.compact(0.35 + 0.45 * t)])
            }
            svg.end()
        }
        if nonFinite > 0 { notes.append("\(nonFinite) step\(nonFinite == 1 ? "" : "s") with non-finite weights not drawn.") }
        if let opt = optimum, let (p, q) = segment(opt.w, opt.b) {
            occupy((p, q))
            svg.empty("line", ["class": "optimum-line", "x1": c(p.x), "y1": c(p.y), "x2": c(q.x), "y2": c(q.y),
                               "stroke": Palette.optimum, "stroke-width": "2", "stroke-dasharray": "7 5"])
        }
        if let fin = last, let (p, q) = segment(fin.w, fin.b) {
            occupy((p, q))
            svg.empty("line", ["class": "final-line", "x1": c(p.x), "y1": c(p.y), "x2": c(q.x), "y2": c(q.y),
                               "stroke": Palette.stepLate, "stroke-width": "2.5"])
        }
        svg.start("g", ["class": "points", "fill": Palette.point, "stroke": Palette.background, "stroke-width": "1"])
        for (x, y) in pairs {
            // A data point weighs as much as a whole line.
            occupied += Array(repeating: (xs(x), ys(y)), count: 25)
            svg.empty("circle", ["class": "point", "cx": c(xs(x)), "cy": c(ys(y)), "r": "4.5"])
        }
        svg.end()
        svg.end()  // clipped group

        var entries: [(Swatch, String)] = [(.dot(Palette.point), "training data (\(finitePairs.count) points)")]
        if !run.steps.isEmpty {
            entries.append((.line(Colour.mix(Palette.stepEarly, Palette.stepLate, 0.4), dash: nil),
                            animate ? "the line after each step (animated)" : "the line after each step, light → dark"))
        }
        if let fin = last, fin.w.isFinite, fin.b.isFinite { entries.append((.line(Palette.stepLate, dash: nil), "final: \(equation(fin.w, fin.b))")) }
        if let opt = optimum { entries.append((.line(Palette.optimum, dash: "7 5"), "least squares: \(equation(opt.w, opt.b))")) }
        legend(frame, .corner(avoiding: occupied), entries)
        svg.end()
    }

    /// `<animate>` stepping through `values`, one frame each, holding the last frame for a moment before repeating.
    mutating func animateValues(_ attribute: String, _ values: [Double]) {
        guard let final = values.last else { return }
        let hold = max(2, values.count / 5)
        let all = values + Array(repeating: final, count: hold)
        let duration = frameDuration * Double(all.count)
        svg.empty("animate", ["attributeName": attribute, "values": all.map { c($0) }.joined(separator: ";"),
                              "dur": NumberText.compact(duration, decimals: 2) + "s", "calcMode": "discrete", "repeatCount": "indefinite"])
    }

    // MARK: - Panel 2: the curves

    mutating func curvesPanel(_ outer: Frame) {
        // The legend sits to the right of the plot, where it cannot hide a curve.
        let frame = outer.inset(left: 70, top: 34, right: 300, bottom: 50)
        let steps = run.steps
        let lastIteration = steps.last?.iteration ?? 1
        let firstIteration = steps.first.map { $0.iteration - 1 } ?? 0
        let xTicks = Ticks(lo: Double(firstIteration), hi: Double(max(lastIteration, firstIteration + 1)), target: 10)
        var top = 0.0
        var nonFinite = 0
        for i in drawn {
            for v in [steps[i].kerasRmse, steps[i].batchRmse, steps[i].valRmse] {
                if v.isFinite { top = max(top, v) } else { nonFinite += 1 }
            }
        }
        if nonFinite > 0 { notes.append("\(nonFinite) non-finite RMSE value\(nonFinite == 1 ? "" : "s") left out of the curves.") }
        let yTicks = Ticks(lo: 0, hi: top > 0 ? top : 1, target: 5)
        let xs = LinearScale(domain: (xTicks.lower, xTicks.upper), range: (frame.x, frame.maxX))
        let ys = LinearScale(domain: (yTicks.lower, yTicks.upper), range: (frame.maxY, frame.y))

        svg.start("g", ["class": "panel", "id": "panel-curves"])
        panelTitle(frame, "The curves: RMSE after every iteration")
        axes(frame, xs: xs, ys: ys, xTicks: xTicks, yTicks: yTicks, xLabel: "iteration (optimizer steps)", yLabel: "RMSE")
        let clip = clipPath(frame)
        svg.start("g", ["clip-path": clip])

        // Epoch boundaries: between the last step of one epoch and the first of the next.
        var spans: [(epoch: Int, from: Double, to: Double)] = []
        for (i, s) in steps.enumerated() {
            let x0 = Double(s.iteration) - 0.5
            let x1 = Double(s.iteration) + 0.5
            if let lastSpan = spans.last, lastSpan.epoch == s.epoch {
                spans[spans.count - 1].to = x1
            } else {
                spans.append((s.epoch, i == 0 ? xTicks.lower : x0, x1))
            }
        }
        if !spans.isEmpty { spans[spans.count - 1].to = max(spans[spans.count - 1].to, xTicks.upper) }
        let boundaryIndices = StepSampling.evenly(Array(1..<max(1, spans.count)), count: 100)
        svg.start("g", ["class": "epochs", "stroke": Palette.epoch, "stroke-width": "1", "stroke-dasharray": "3 4", "stroke-opacity": "0.7"])
        for k in boundaryIndices {
            let px = c(xs(spans[k].from))
            svg.empty("line", ["class": "epoch-boundary", "x1": px, "y1": c(frame.y), "x2": px, "y2": c(frame.maxY)])
        }
        svg.end()
        // Label the epochs whose span is wide enough to hold the text.
        svg.start("g", ["class": "epoch-labels", "font-size": "10", "fill": Palette.epoch, "text-anchor": "middle"])
        var lastLabelEnd = -Double.infinity
        for span in spans {
            let a = xs(span.from)
            let b = xs(span.to)
            let label = "epoch \(span.epoch)"
            let needed = Double(label.count) * 6 + 6
            let mid = (a + b) / 2
            guard b - a >= needed || (spans.count > 1 && mid - needed / 2 > lastLabelEnd + 4 && spans.count <= 200) else { continue }
            guard mid - needed / 2 > lastLabelEnd else { continue }
            svg.leaf("text", ["class": "epoch-label", "x": c(mid), "y": c(frame.maxY - 6)], text: label)
            lastLabelEnd = mid + needed / 2
        }
        svg.end()

        let series: [(String, String, String, KeyPath<StepPoint, Double>, Double)] = [
            ("curve-batch", Palette.batch, "batch RMSE: this batch, before its update", \.batchRmse, 1.5),
            ("curve-keras", Palette.keras, "Keras RMSE: running, before each update", \.kerasRmse, 2.2),
            ("curve-val", Palette.validation, "validation RMSE after the update", \.valRmse, 2.2),
        ]
        let markers = drawn.count <= 60
        for (cls, colour, _, key, strokeWidth) in series {
            // A non-finite value breaks the curve; each finite run becomes one polyline.
            var runs: [[Point]] = [[]]
            for i in drawn {
                let v = steps[i][keyPath: key]
                if v.isFinite {
                    runs[runs.count - 1].append((xs(Double(steps[i].iteration)), ys(v)))
                } else if !(runs.last?.isEmpty ?? true) {
                    runs.append([])
                }
            }
            for points in runs where !points.isEmpty {
                svg.empty("polyline", ["class": cls, "points": points.map { "\(c($0.x)),\(c($0.y))" }.joined(separator: " "),
                                       "fill": "none", "stroke": colour, "stroke-width": NumberText.compact(strokeWidth), "stroke-linejoin": "round"])
                if markers {
                    svg.start("g", ["class": "markers", "fill": colour])
                    for p in points { svg.empty("circle", ["class": "marker", "cx": c(p.x), "cy": c(p.y), "r": "2.5"]) }
                    svg.end()
                }
            }
        }
        if animate, !drawn.isEmpty {
            let xsFrames = drawn.map { xs(Double(steps[$0].iteration)) }
            svg.start("line", ["class": "animated-cursor", "x1": c(xsFrames[0]), "y1": c(frame.y), "x2": c(xsFrames[0]), "y2": c(frame.maxY),
                               "stroke": Palette.stepLate, "stroke-width": "1.5"])
            animateValues("x1", xsFrames)
            animateValues("x2", xsFrames)
            svg.end()
        }
        svg.end()  // clipped group
        var entries = series.map { (Swatch.line($0.1, dash: nil), $0.2) }
        if spans.count > 1 { entries.append((.line(Palette.epoch, dash: "3 4"), "epoch boundary")) }
        legend(Frame(x: frame.maxX + 14, y: frame.y, width: outer.maxX - frame.maxX - 20, height: frame.height), .at(x: frame.maxX + 14, y: frame.y), entries)
        svg.end()
    }

    // MARK: - Panel 3: the path over the MSE landscape

    mutating func pathPanel(_ outer: Frame) {
        let frame = outer.inset(left: 70, top: 34, right: 18, bottom: 50)
        var path: [(w: Double, b: Double)] = [run.initial]
        path += drawn.map { (run.steps[$0].wAfter, run.steps[$0].bAfter) }
        let finite = path.filter { $0.w.isFinite && $0.b.isFinite }
        var ws = finite.map(\.w)
        var bs = finite.map(\.b)
        if let opt = optimum { ws.append(opt.w); bs.append(opt.b) }
        func padded(_ v: [Double]) -> (Double, Double) {
            let lo = v.min() ?? 0
            let hi = v.max() ?? 1
            let pad = hi > lo ? (hi - lo) * 0.12 : max(abs(lo) * 0.1, 1)
            return (lo - pad, hi + pad)
        }
        let (w0, w1) = padded(ws)
        let (b0, b1) = padded(bs)
        let xTicks = Ticks(lo: w0, hi: w1, target: 5)
        let yTicks = Ticks(lo: b0, hi: b1, target: 5)
        let xs = LinearScale(domain: (xTicks.lower, xTicks.upper), range: (frame.x, frame.maxX))
        let ys = LinearScale(domain: (yTicks.lower, yTicks.upper), range: (frame.maxY, frame.y))

        svg.start("g", ["class": "panel", "id": "panel-path"])
        panelTitle(frame, "The path of (w, b) over the training MSE")
        axes(frame, xs: xs, ys: ys, xTicks: xTicks, yTicks: yTicks, xLabel: "w (kernel)", yLabel: "b (bias)")
        let clip = clipPath(frame)
        svg.start("g", ["clip-path": clip])

        let levels = contours(frame, xs: xs, ys: ys, w: (xTicks.lower, xTicks.upper), b: (yTicks.lower, yTicks.upper))

        // The path: one polyline through the finite points, each point coloured light to dark like the lines.
        let pixels = path.map { p -> Point? in p.w.isFinite && p.b.isFinite ? (xs(p.w), ys(p.b)) : nil }
        let joined = pixels.compactMap { $0 }
        if joined.count > 1 {
            svg.empty("polyline", ["class": "path", "points": joined.map { "\(c($0.x)),\(c($0.y))" }.joined(separator: " "),
                                   "fill": "none", "stroke": Palette.stepLate, "stroke-width": "1.5", "stroke-opacity": "0.75", "stroke-linejoin": "round"])
        }
        svg.start("g", ["class": "path-points"])
        for (k, p) in pixels.enumerated().dropFirst() {
            guard let p else { continue }
            svg.empty("circle", ["class": "path-point", "cx": c(p.x), "cy": c(p.y), "r": drawn.count > 100 ? "1.8" : "3.2",
                                 "fill": Colour.mix(Palette.stepEarly, Palette.stepLate, progress(k - 1))])
        }
        svg.end()
        if let start = pixels.first ?? nil {
            svg.empty("circle", ["class": "path-start", "cx": c(start.x), "cy": c(start.y), "r": "5.5", "fill": "none", "stroke": Palette.stepLate, "stroke-width": "2"])
        }
        if let opt = optimum, opt.w.isFinite, opt.b.isFinite {
            svg.empty("path", ["class": "optimum-marker", "d": crossPath(xs(opt.w), ys(opt.b), 6), "stroke": Palette.optimum, "stroke-width": "3", "fill": "none"])
        }
        if animate {
            let frames = pixels.dropFirst().map { $0 ?? (-10, -10) }
            if let first = frames.first {
                svg.start("circle", ["class": "animated-point", "cx": c(first.x), "cy": c(first.y), "r": "6", "fill": Palette.stepLate, "stroke": Palette.background, "stroke-width": "1.5"])
                animateValues("cx", frames.map(\.x))
                animateValues("cy", frames.map(\.y))
                svg.end()
            }
        }
        svg.end()  // clipped group

        var entries: [(Swatch, String)] = [(.ring(Palette.stepLate), "start: w=\(NumberText.short(run.initial.w)), b=\(NumberText.short(run.initial.b))")]
        entries.append((.dot(Palette.stepLate), "(w, b) after each step"))
        if let opt = optimum { entries.append((.cross(Palette.optimum), "least squares: w=\(NumberText.short(opt.w)), b=\(NumberText.short(opt.b))")) }
        if let levels { entries.append((.line(Palette.contour, dash: nil), "MSE = \(NumberText.short(levels.lo)) … \(NumberText.short(levels.hi)), log-spaced")) }
        // The start and the optimum matter most; the path's points next.
        var occupied = joined
        if let start = pixels.first ?? nil { occupied += Array(repeating: start, count: 20) }
        if let opt = optimum, opt.w.isFinite, opt.b.isFinite { occupied += Array(repeating: (xs(opt.w), ys(opt.b)), count: 20) }
        legend(frame, .corner(avoiding: occupied), entries)
        svg.end()
    }

    /// Draws contour lines of the training MSE over the panel; returns the lowest and highest level drawn.
    mutating func contours(_ frame: Frame, xs: LinearScale, ys: LinearScale, w: (Double, Double), b: (Double, Double)) -> (lo: Double, hi: Double)? {
        guard data.count > 0 else { return nil }
        let surface = data
        let grid = ContourGrid(columns: 121, rows: 121, x: w, y: b) { surface.mse(w: $0, b: $1) }
        let finite = grid.values.filter(\.isFinite)
        guard let top = finite.max(), let bottom = finite.min() else { return nil }
        // The floor is the optimum's MSE: contours are log-spaced in the excess over it, which makes them
        // evenly spread ellipses around the optimum rather than bunched at the rim.
        let floor = optimum.map { surface.mse(w: $0.w, b: $0.b) }.map { min($0, bottom) } ?? bottom
        let excessTop = (top - floor) * 0.9
        guard excessTop > 0, excessTop.isFinite else { return nil }
        let count = 10
        let decades = 3.0
        var levels: [Double] = []
        for k in 0..<count {
            let exponent = -decades * (1 - Double(k) / Double(count - 1))
            levels.append(floor + excessTop * Math.exp(exponent * Math.log(10)))
        }
        svg.start("g", ["class": "contours", "fill": "none", "stroke": Palette.contour, "stroke-width": "1"])
        for (k, level) in levels.enumerated() {
            let segments = grid.segments(at: level)
            guard !segments.isEmpty else { continue }
            let pixels = segments.map { (p, q) -> (Point, Point) in ((xs(p.x), ys(p.y)), (xs(q.x), ys(q.y))) }
            var d = ""
            for chain in ContourChains.join(pixels, key: { "\(NumberText.compact($0.x, decimals: 1)) \(NumberText.compact($0.y, decimals: 1))" }) {
                for (n, p) in chain.enumerated() {
                    d += (n == 0 ? "M" : (n == 1 ? "L" : " ")) + NumberText.compact(p.x, decimals: 1) + " " + NumberText.compact(p.y, decimals: 1)
                }
            }
            let opacity = 0.3 + 0.5 * Double(count - k) / Double(count)
            svg.empty("path", ["class": "contour", "d": d, "stroke-opacity": NumberText.compact(opacity)])
        }
        svg.end()
        return (levels[0], levels[count - 1])
    }
}
