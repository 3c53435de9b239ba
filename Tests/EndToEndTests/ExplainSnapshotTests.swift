import Foundation
import LTProtocol
import Testing

/// `ltctl explain` for every optimizer, compared whole with reviewed snapshots. Each job is a golden Keras run on the
/// twelve-point data (Tests/LTEngineTests/Golden, named below), so Snapshots/review_explain.py checks each
/// snapshot's rows, weights, loss and result against Keras's own trace; AMSGrad has no golden run and is checked
/// against the engine (LTEngineTests/WorkingTests).
@Suite("ltctl explain snapshots")
struct ExplainSnapshotTests {
    static let colab = ["--example", "colab"]
    @Test(arguments: [
        // golden seed_e4_b4 (rmsprop): the initial weights, and a step in epoch 2
        ("explain-0.txt", colab, 0),
        ("explain-5.txt", colab, 5),
        // golden sgd_b5_e10: epoch 2's last step, a partial batch of 2 rows
        ("explain-sgd-partial-batch.txt", colab + ["--optimizer", "sgd", "--learning-rate", "0.005", "--epochs", "10", "--batch-size", "5"], 6),
        // golden momentum_b4_e5
        ("explain-sgd-momentum.txt", colab + ["--optimizer", "sgd", "--learning-rate", "0.001", "--momentum", "0.9", "--epochs", "5"], 2),
        // golden nesterov_b5_e5: epoch 3's partial last batch
        ("explain-sgd-nesterov.txt", colab + ["--optimizer", "sgd", "--learning-rate", "0.001", "--momentum", "0.9", "--nesterov", "--epochs", "5", "--batch-size", "5"], 9),
        // golden rmsprop_centered_momentum_b4_e3
        ("explain-rmsprop-centered-momentum.txt", colab + ["--learning-rate", "0.01", "--centered", "--momentum", "0.5", "--epochs", "3"], 4),
        // golden adam_b4_e20: issue 13's case
        ("explain-adam.txt", colab + ["--optimizer", "adam", "--learning-rate", "0.1", "--epochs", "20"], 3),
        // no golden run: AMSGrad, checked against the engine
        ("explain-adam-amsgrad.txt", colab + ["--optimizer", "adam", "--learning-rate", "0.1", "--amsgrad"], 5),
        // golden adamw_b5_e10: weight decay first, on w and b
        ("explain-adamw.txt", colab + ["--optimizer", "adamw", "--learning-rate", "0.05", "--weight-decay", "0.004", "--epochs", "10", "--batch-size", "5"], 4),
        // golden adagrad_b4_e20
        ("explain-adagrad.txt", colab + ["--optimizer", "adagrad", "--learning-rate", "0.5", "--epochs", "20"], 2),
        // golden adam_b1_e2_glorot: Keras's GlorotUniform(seed=7) draw
        ("explain-0-glorot.txt", colab + ["--optimizer", "adam", "--learning-rate", "0.001", "--epochs", "2", "--batch-size", "1", "--init", "glorot:7"], 0),
    ])
    func snapshot(file: String, start: [String], iteration: Int) throws {
        let h = try DaemonProcess.launchForLtctl()
        let started = try h.ltctl(["start", "job"] + start)
        #expect(started.status == 0, "\(started.stderr)")
        #expect(try h.waitFinished("job") == 0)
        let result = try h.ltctl(["explain", "job", "--iteration", String(iteration)])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout == (try Fixtures.snapshot(file, actual: result.stdout)))
    }

    /// --json is the daemon's reply; its result is the step event's, and a missing iteration says how far the job got.
    @Test func jsonAndErrors() throws {
        let h = try DaemonProcess.launchForLtctl()
        try h.runColabToTheEnd("colab")
        let reply = try JSONParser.parse(try h.ltctl(["explain", "colab", "-i", "12", "--json"]).stdout)
        #expect(reply["type"]?.stringValue == "explanation" && reply["iteration"]?.intValue == 12)
        let step = String(decoding: try h.rawSubscription("colab"), as: UTF8.self).split(separator: "\n")
            .compactMap { try? Event(line: Array($0.utf8)) }.first { $0.type == .step && $0.int("iteration") == 12 }
        for key in ["w_before", "b_before", "grad_w", "grad_b", "w_after", "b_after", "batch_loss"] {
            #expect(reply[key] == step?.value(key), "\(key)")
        }
        let beyond = try h.ltctl(["explain", "colab", "-i", "13"])
        #expect(beyond.status == 1)
        #expect(beyond.stderr.contains("has not reached iteration 13") && beyond.stderr.contains("12 of 12"))
        let unknown = try h.ltctl(["explain", "nope", "-i", "1"])
        #expect(unknown.status != 0 && unknown.stderr.contains("nope"))
    }
}
