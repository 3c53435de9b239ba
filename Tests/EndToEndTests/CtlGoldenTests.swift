import Foundation
import LTClient
import LTProtocol
import Testing

/// `compare` against the real Keras trace of the twelve-point example (epochs 4, batch 4), and the snapshots of
/// every human format on that run.
@Suite("ltctl on the twelve-point example", .serialized)
struct CtlGoldenTests {
    @Test func compareMatchesKerasToFourDecimals() throws {
        let h = try DaemonProcess.launchForLtctl()
        try h.runColabToTheEnd("colab")
        let golden = try Fixtures.goldenSteps()
        #expect(golden.count == 12)

        // The table: 12 rows, Keras's running RMSE and the validation RMSE to 4 decimals.
        let table = try h.ltctl(["compare", "colab"]).stdout.split(separator: "\n").map(String.init)
        let rows = table.filter { $0.range(of: #"^\s+\d+\s+\d+\s+\d+\s"#, options: .regularExpression) != nil }
        #expect(rows.count == 12)
        for (row, step) in zip(rows, golden) {
            let fields = row.split(separator: " ").map(String.init)
            let keras = try #require(step["logs"]?["root_mean_squared_error"]?.doubleValue)
            let val = try #require(step["val_eval_rmse"]?.doubleValue)
            #expect(fields[0] == String(step["global_step"]?.intValue ?? -1))
            #expect(fields[4] == String(format: "%.4f", keras), "iteration \(fields[0]): keras rmse")
            #expect(fields[6] == String(format: "%.4f", val), "iteration \(fields[0]): val rmse")
        }

        // JSON carries the exact float32 values: equal to Keras's bit for bit.
        let json = try JSONParser.parse(try h.ltctl(["compare", "colab", "--json"]).stdout)
        let jsonRows = try #require(json["rows"]?.arrayValue)
        #expect(jsonRows.count == 12)
        for (row, step) in zip(jsonRows, golden) {
            #expect(row["keras_rmse"]?.doubleValue.map(Float.init) == step["logs"]?["root_mean_squared_error"]?.doubleValue.map(Float.init))
            #expect(row["val_rmse"]?.doubleValue.map(Float.init) == step["val_eval_rmse"]?.doubleValue.map(Float.init))
            #expect(row["batch_rmse"]?.doubleValue.map(Float.init) == step["batch_mse_f32"]?.doubleValue.map { Float($0).squareRoot() })
        }
        #expect((json["explanation"]?.arrayValue?.count ?? 0) >= 3)

        let csv = try h.ltctl(["compare", "colab", "--csv"]).stdout.split(separator: "\n")
        #expect(csv.count == 13)
        #expect(csv.first == "iteration,epoch,step,rows,keras_rmse,batch_rmse,val_rmse,difference")
    }

    /// Each human format, with NO_COLOR, compared whole with a reviewed snapshot.
    @Test(arguments: [
        ("tail.txt", ["tail", "colab"]),
        ("tail-every-3.txt", ["tail", "colab", "--every", "3"]),
        ("compare.txt", ["compare", "colab"]),
        ("status.txt", ["status", "colab"]),
        ("list.txt", ["list"]),
        ("export.csv", ["export", "colab", "--csv"]),
    ])
    func humanFormatSnapshots(file: String, arguments: [String]) throws {
        let h = try DaemonProcess.launchForLtctl()
        try h.runColabToTheEnd("colab")
        let result = try h.ltctl(arguments)
        #expect(result.status == 0, "\(result.stderr)")
        let actual = Self.normalized(result.stdout)
        #expect(actual == (try Fixtures.snapshot(file, actual: actual)))
    }

    /// Replaces what differs from run to run: the creation time and the owner.
    static func normalized(_ text: String) -> String {
        var t = text.replacingOccurrences(of: #"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"#, with: "<created>", options: .regularExpression)
        t = t.replacingOccurrences(of: #"(\w[\w.-]* )?\(uid \d+\)|uid \d+"#, with: "<owner>", options: .regularExpression)
        return t
    }
}
