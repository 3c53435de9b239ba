import Foundation
import Testing
@testable import LTPlot

@Suite struct SVGPlotTests {
    @Test func twelvePointExampleIsWellFormedAndHoldsEveryPointLineAndLabel() throws {
        let run = try GoldenRun.load()
        #expect(run.steps.count == 12)
        let svg = SVGPlot.render(run)
        let doc = SVGDocument(svg)
        #expect(doc.error == nil, "not well-formed XML: \(doc.error ?? "")")
        #expect(doc.elements.first?.name == "svg")

        // Panel 1: twelve data points, twelve step lines, one final line, one least-squares line.
        #expect(doc.count("circle", class: "point") == 12)
        #expect(doc.count("line", class: "step-line") == 12)
        #expect(doc.count("line", class: "final-line") == 1)
        #expect(doc.count("line", class: "optimum-line") == 1)
        #expect(doc.all("line", class: "optimum-line").first?.attributes["stroke-dasharray"] != nil)

        // Panel 2: three curves of twelve points each, 3 boundaries between 4 epochs, 4 epoch labels.
        for curve in ["curve-keras", "curve-batch", "curve-val"] {
            let lines = doc.all("polyline", class: curve)
            #expect(lines.count == 1, "\(curve)")
            let points = lines.first?.attributes["points"]?.split(separator: " ") ?? []
            #expect(points.count == 12, "\(curve) has \(points.count) points")
        }
        #expect(doc.count("line", class: "epoch-boundary") == 3)
        #expect(doc.all("text", class: "epoch-label").map(\.text) == ["epoch 1", "epoch 2", "epoch 3", "epoch 4"])

        // Panel 3: the start, twelve points along the path, the optimum, and contour lines.
        #expect(doc.count("circle", class: "path-point") == 12)
        #expect(doc.count("circle", class: "path-start") == 1)
        #expect(doc.count("path", class: "optimum-marker") == 1)
        #expect(doc.count("path", class: "contour") >= 6)

        // Labels: a title, the settings, three panel titles, six axis labels, four legend lines per panel.
        #expect(doc.all("text", class: "title").map(\.text) == ["colab-e4-b4"])
        #expect(doc.all("text", class: "settings").first?.text.contains("rmsprop, learning rate 0.05") == true)
        #expect(doc.count("text", class: "panel-title") == 3)
        #expect(doc.all("text", class: "axis-label").map(\.text) == ["x", "y", "w (kernel)", "b (bias)", "iteration (optimizer steps)", "RMSE"])
        #expect(doc.count("text", class: "legend-label") == 12)
        #expect(doc.count("text", class: "tick-label") >= 20)
        #expect(!svg.contains("nan") && !svg.contains("NaN") && !svg.contains("inf"))
        // Self-contained: no scripts, no links, no external resources.
        #expect(!svg.contains("<script") && !svg.contains("href") && !svg.contains("@import"))
    }

    @Test func lineLabelsStateTheFinalAndTheLeastSquaresLine() throws {
        let run = try GoldenRun.load()
        let doc = SVGDocument(SVGPlot.render(run))
        let legend = doc.all("text", class: "legend-label").map(\.text)
        // The final weights of the Keras run and the least-squares line of the data.
        #expect(legend.contains("final: y = 1.4x + 0.942"))
        guard let optimum = LeastSquares(x: run.x, y: run.y).optimum else {
            Issue.record("no least-squares line")
            return
        }
        // Independent closed form: w = (nΣxy − ΣxΣy) / (nΣx² − (Σx)²).
        let n = Double(run.x.count)
        let sx = run.x.reduce(0, +), sy = run.y.reduce(0, +)
        let sxy = zip(run.x, run.y).map { $0 * $1 }.reduce(0, +), sxx = run.x.map { $0 * $0 }.reduce(0, +)
        let w = (n * sxy - sx * sy) / (n * sxx - sx * sx)
        let b = (sy - w * sx) / n
        #expect(abs(optimum.w - w) < 1e-12 && abs(optimum.b - b) < 1e-12)
        #expect(legend.contains("least squares: y = \(NumberText.short(w))x + \(NumberText.short(b))"))
    }

    @Test func stepLinesFollowTheWeightsAfterEachStep() throws {
        let run = try GoldenRun.load()
        let doc = SVGDocument(SVGPlot.render(run))
        let lines = doc.all("line", class: "step-line")
        let finals = doc.all("line", class: "final-line")
        // The last step's line is the final line.
        #expect(lines.last?.attributes["y1"] == finals.first?.attributes["y1"])
        #expect(lines.last?.attributes["y2"] == finals.first?.attributes["y2"])
        // Every step raised the line at the right end (the weights grow towards the data).
        let rightEnds = lines.compactMap { $0.attributes["y2"].flatMap(Double.init) }
        #expect(rightEnds.count == 12)
        #expect(zip(rightEnds, rightEnds.dropFirst()).allSatisfy { $0 > $1 }, "y2 in pixels must fall as the line rises: \(rightEnds)")
    }

    @Test func animatedVersionStepsThroughTheTwelveLines() throws {
        let run = try GoldenRun.load()
        let svg = SVGPlot.render(run, animate: true)
        let doc = SVGDocument(svg)
        #expect(doc.error == nil, "not well-formed XML: \(doc.error ?? "")")
        #expect(doc.count("line", class: "step-line") == 0)
        #expect(doc.count("line", class: "animated-line") == 1)
        let animations = doc.elements.filter { $0.name == "animate" }
        #expect(Set(animations.compactMap { $0.attributes["attributeName"] }) == ["x1", "y1", "x2", "y2", "cx", "cy"])
        for a in animations {
            #expect(a.attributes["calcMode"] == "discrete")
            let values = a.attributes["values"]?.split(separator: ";") ?? []
            // Twelve frames, then the last one held.
            #expect(values.count > 12)
            #expect(Set(values.dropFirst(11)).count == 1)
        }
    }

    @Test func nonFiniteValuesAreSkippedAndNoted() throws {
        var run = try GoldenRun.load()
        run.steps[5].wAfter = .nan
        run.steps[6].valRmse = .infinity
        run.steps[7].kerasRmse = -.infinity
        run.x[2] = .nan
        for animate in [false, true] {
            let svg = SVGPlot.render(run, animate: animate)
            let doc = SVGDocument(svg)
            #expect(doc.error == nil)
            #expect(!svg.lowercased().contains("nan") && !svg.lowercased().contains("inf"))
            #expect(doc.count("circle", class: "point") == 11)
            let note = doc.all("text", class: "note").first?.text ?? ""
            #expect(note.contains("1 data point with a non-finite value"))
            #expect(note.contains("1 step with non-finite weights"))
            #expect(note.contains("2 non-finite RMSE values"))
            if !animate { #expect(doc.count("line", class: "step-line") == 11) }
            // A non-finite value breaks its curve in two.
            #expect(doc.count("polyline", class: "curve-val") == 2)
        }
    }

    @Test func textIsEscaped() throws {
        var run = try GoldenRun.load()
        run.title = "a<b & \"c\" 'd' >\u{1}"
        run.settings = "]]> <!-- -->"
        let doc = SVGDocument(SVGPlot.render(run))
        #expect(doc.error == nil, "\(doc.error ?? "")")
        #expect(doc.all("text", class: "title").first?.text == "a<b & \"c\" 'd' >")
        #expect(doc.all("text", class: "settings").first?.text == "]]> <!-- -->")
    }

    @Test func longSettingsShrinkAndAreCutToFit() throws {
        var run = try GoldenRun.load()
        run.settings = String(repeating: "adam (learning_rate 0.1, beta_1 0.9) · ", count: 4)
        let medium = SVGDocument(SVGPlot.render(run)).all("text", class: "settings").first
        #expect(medium?.text == run.settings)
        #expect((medium?.attributes["font-size"]).flatMap(Double.init).map { $0 < 13 && $0 >= 9 } == true)
        run.settings = String(repeating: "x", count: 1000)
        let long = SVGDocument(SVGPlot.render(run)).all("text", class: "settings").first
        #expect(long?.attributes["font-size"] == "9")
        #expect(long.map { $0.text.count < 200 && $0.text.hasSuffix("…") } == true)
    }

    @Test func longRunsAreSampledKeepingFirstLastAndEpochEnds() {
        // 40 epochs of 250 steps; the weights walk towards the optimum.
        var steps: [StepPoint] = []
        for i in 1...10_000 {
            let t = Double(i) / 10_000
            steps.append(StepPoint(iteration: i, epoch: (i - 1) / 250 + 1, step: (i - 1) % 250 + 1, wAfter: 0.5 + 2.5 * t, bAfter: 2 * t,
                                   kerasRmse: 20 * (1 - t) + 1, batchRmse: 22 * (1 - t) + 1, valRmse: 19 * (1 - t) + 1))
        }
        let run = TrainingRun(title: "long", settings: "sgd", x: (1...12).map(Double.init), y: (1...12).map { 3 * Double($0) + 2 },
                              initial: (0.5, 0), optimum: nil, steps: steps)
        let picked = StepSampling.indices(of: steps, limit: SVGPlot.maxDrawnSteps)
        #expect(picked.count <= SVGPlot.maxDrawnSteps && picked.count >= SVGPlot.maxDrawnSteps - 40)
        #expect(picked.first == 0 && picked.last == 9_999)
        #expect(picked == picked.sorted() && Set(picked).count == picked.count)
        for epoch in 1...40 { #expect(picked.contains(epoch * 250 - 1), "end of epoch \(epoch)") }

        let doc = SVGDocument(SVGPlot.render(run))
        #expect(doc.error == nil)
        #expect(doc.count("line", class: "step-line") == picked.count)
        #expect(doc.count("line", class: "epoch-boundary") == 39)
        #expect(doc.count("circle", class: "marker") == 0)
        let note = doc.all("text", class: "note").first?.text ?? ""
        #expect(note.contains("10000 steps, \(picked.count) of them drawn"))
    }

    @Test func manyDataPointsAreThinnedEvenly() {
        let x = (0..<100_000).map { Double($0) / 1000 }
        let run = TrainingRun(title: "big", settings: "", x: x, y: x.map { 2 * $0 + 1 }, initial: (0, 0), optimum: nil, steps: [])
        let doc = SVGDocument(SVGPlot.render(run))
        #expect(doc.error == nil)
        #expect(doc.count("circle", class: "point") == SVGPlot.maxDrawnPoints)
        #expect(doc.all("text", class: "note").first?.text.contains("500 of the 100000 data points drawn") == true)
        #expect(doc.all("text", class: "legend-label").first?.text == "training data (100000 points)")
    }

    @Test func emptyAndDegenerateRunsStillRender() {
        let empty = TrainingRun(title: "empty", settings: "", x: [], y: [], initial: (0, 0), optimum: nil, steps: [])
        let same = TrainingRun(title: "same x", settings: "", x: [2, 2, 2], y: [1, 2, 3], initial: (0.5, 0), optimum: nil,
                               steps: [StepPoint(iteration: 1, epoch: 1, step: 1, wAfter: 0.6, bAfter: 0.1, kerasRmse: 1, batchRmse: 1, valRmse: 1)])
        for run in [empty, same] {
            let svg = SVGPlot.render(run, width: 480)
            let doc = SVGDocument(svg)
            #expect(doc.error == nil, "\(run.title): \(doc.error ?? "")")
            #expect(!svg.lowercased().contains("nan"))
            #expect(doc.elements.first?.attributes["width"] == "480")
        }
    }
}
