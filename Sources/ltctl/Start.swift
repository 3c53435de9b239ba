import ArgumentParser
import Foundation
import LTData
import LTClient
import LTEngine
import LTProtocol

extension JSONValue {
    /// This object with `key` set to `value` (replacing it in place, or appended).
    func setting(_ key: String, _ value: JSONValue) -> JSONValue {
        var members = objectMembers ?? []
        if let i = members.firstIndex(where: { $0.key == key }) { members[i].value = value } else { members.append((key, value)) }
        return .object(members)
    }
}

/// Everything a job's spec holds, as flags. Flags override the same fields of `--spec`.
struct SpecOptions: ParsableArguments {
    @Option(help: ArgumentHelp("A JSON spec (docs/PROTOCOL.md); '-' reads stdin. Flags below override its fields.", valueName: "file"),
            completion: .file(extensions: ["json"]))
    var spec: String?

    // Data
    @Option(help: ArgumentHelp("Training data from a CSV file ('-' for stdin); a header row is optional.", valueName: "file"),
            completion: .file(extensions: ["csv"]))
    var csv: String?
    @Option(help: ArgumentHelp("The CSV column of x: a header name or a 1-based position (default 1).", valueName: "col"))
    var x: String?
    @Option(help: ArgumentHelp("The CSV column of y: a header name or a 1-based position (default 2).", valueName: "col"))
    var y: String?
    @Option(help: ArgumentHelp("The CSV field separator: one character, or tab, comma, semicolon (default: detected from the first row).",
                               valueName: "char"))
    var delimiter: String?
    @Flag(inversion: .prefixedNo, help: "Read 5,0 as 5.0 in a CSV (default: yes unless the fields are separated by commas).")
    var decimalComma: Bool?
    @Option(help: ArgumentHelp(
        "A built-in data set: 'colab', the twelve points x=1..12 of the classic exercise.",
        discussion: "Unless overridden it also sets rmsprop, learning rate 0.05, kernel 0.5, bias 0, 4 epochs, batch 4, no shuffle.",
        valueName: "name"))
    var example: String?
    @Option(help: ArgumentHelp(
        "Generated data: slope=3,intercept=-2,noise=0.5,n=1000,seed=1[,xmin=0,xmax=10] (y = slope*x + intercept + noise*N(0,1)).",
        valueName: "params"))
    var synthetic: String?
    @Option(help: ArgumentHelp("Validation data: a CSV file (same --x/--y columns), or split:F to hold out the last fraction F of the rows.",
                               valueName: "file|split:F"))
    var validation: String?

    // Optimizer
    // Every default below is LTEngine's KerasDefaults, the values the engine fills in for an absent parameter.
    @Option(help: ArgumentHelp("\(SpecOptions.optimizers.joined(separator: ", ")) (default \(KerasDefaults.optimizer.rawValue), as Keras's compile).",
                               valueName: "name"))
    var optimizer: String?
    @Option(help: ArgumentHelp("The learning rate (Keras's default: " + OptimizerName.allCases.map {
        "\($0.rawValue) \(KerasDefaults.learningRate($0))" }.joined(separator: ", ") + ").", valueName: "lr"))
    var learningRate: Double?
    @Option(help: "RMSprop's rho (default \(KerasDefaults.rho)).") var rho: Double?
    @Option(help: "SGD or RMSprop momentum (default \(KerasDefaults.momentum)).") var momentum: Double?
    @Option(help: "Epsilon: RMSprop, Adam, AdamW, Adagrad (default \(KerasDefaults.epsilon)).") var epsilon: Double?
    @Flag(inversion: .prefixedNo, help: "Centered RMSprop (default \(KerasDefaults.centered)).") var centered: Bool?
    @Flag(inversion: .prefixedNo, help: "Nesterov momentum, SGD (default \(KerasDefaults.nesterov)).") var nesterov: Bool?
    @Option(name: .customLong("beta-1"), help: "Adam's and AdamW's beta_1 (default \(KerasDefaults.beta1)).") var beta1: Double?
    @Option(name: .customLong("beta-2"), help: "Adam's and AdamW's beta_2 (default \(KerasDefaults.beta2)).") var beta2: Double?
    @Flag(inversion: .prefixedNo, help: "AMSGrad, Adam and AdamW (default \(KerasDefaults.amsgrad)).") var amsgrad: Bool?
    @Option(help: ArgumentHelp("Weight decay, any optimizer (default: " + OptimizerName.allCases.map {
        "\($0.rawValue) \(KerasDefaults.weightDecay($0).map { "\($0)" } ?? "none")" }.joined(separator: ", ") + ")."))
    var weightDecay: Double?
    @Option(help: "Adagrad's initial accumulator value (default \(KerasDefaults.initialAccumulatorValue)).")
    var initialAccumulatorValue: Double?

    // Training
    @Option(help: "Epochs.") var epochs: Int?
    @Option(help: "Batch size (Keras's default is \(KerasDefaults.batchSize)).") var batchSize: Int?
    @Option(help: ArgumentHelp(
        "Shuffle: --shuffle=SEED feeds exactly the rows Keras 3.15.1 (TensorFlow 2.21) fit(shuffle=True) feeds numpy arrays after keras.utils.set_random_seed(SEED), 0 <= SEED < 2^32; the same order every epoch. --shuffle draws the seed and prints it. --shuffle=false: dataset order.",
        discussion: "Not Keras's order: tf.data inputs, shuffle=\"batch\", fit without a seed, other Keras or TensorFlow versions, the JAX or PyTorch backends (docs/SHUFFLE.md).",
        valueName: "seed"))
    var shuffle: String?

    // Initial weights
    @Option(help: "The initial kernel (w).") var initKernel: Double?
    @Option(help: "The initial bias (b); default 0 with --init-kernel.") var initBias: Double?
    @Option(name: .customLong("init"),
            help: ArgumentHelp("glorot:SEED (GlorotUniform(seed=SEED)) or keras:SEED (a fresh Dense(1) after set_random_seed(SEED)).",
                               valueName: "kind:seed"))
    var initializer: String?
    @Option(help: ArgumentHelp(
        "Start from the initial kernel whose run prints this line of Keras's (the last epoch's), e.g. \"loss: 535.4800 - root_mean_squared_error: 23.1405\".",
        discussion: "Searches GlorotUniform's range (±√3; the bias starts at 0) with the engine, using the job's other settings, and reports every kernel that prints the line.",
        valueName: "line"))
    var fromKerasLog: String?
    @Option(help: ArgumentHelp("With --from-keras-log: the loss you computed from the final weights (e.g. in a spreadsheet), to choose among kernels.", valueName: "loss"))
    var handLoss: String?
    @Option(help: ArgumentHelp("With --from-keras-log: the RMSE you computed from the final weights.", valueName: "rmse"))
    var handRmse: String?

    // Run
    @Option(help: "float32 (Keras-identical, default) or float64.") var precision: String?
    @Option(help: ArgumentHelp("Sleep between steps so a person can watch: e.g. 200ms, 1s, 1.5s (at most 60s).", valueName: "duration"))
    var pace: String?
    @Flag(help: "Start paused (walk it with `ltctl step`).") var paused = false
    @Option(help: ArgumentHelp("stop (default, like TerminateOnNaN) or continue.", valueName: "policy")) var onDivergence: String?
    @Option(help: ArgumentHelp("exact (Keras evaluate, default) or fast.", valueName: "mode")) var validationMode: String?

    static let optimizers = OptimizerName.allCases.map(\.rawValue)

    func validate() throws {
        let sources = [csv != nil, example != nil, synthetic != nil].filter { $0 }.count
        if sources > 1 { throw ValidationError("give one data source: --csv, --example or --synthetic") }
        if sources == 0 && spec == nil {
            throw ValidationError("give data: --csv FILE, --example colab, --synthetic slope=3,intercept=-2,noise=0.5,n=1000,seed=1, or --spec FILE")
        }
        if let example, example != "colab" { throw ValidationError("unknown example \"\(example)\"; the only one is colab") }
        if let optimizer, !Self.optimizers.contains(optimizer) {
            throw ValidationError("unknown optimizer \"\(optimizer)\"; use one of \(Self.optimizers.joined(separator: ", "))")
        }
        if let precision, precision != "float32", precision != "float64" { throw ValidationError("--precision is float32 or float64") }
        if initializer != nil && (initKernel != nil || initBias != nil) {
            throw ValidationError("--init and --init-kernel/--init-bias exclude each other")
        }
        if initBias != nil && initKernel == nil { throw ValidationError("--init-bias needs --init-kernel too") }
        if fromKerasLog != nil && (initializer != nil || initKernel != nil) {
            throw ValidationError("--from-keras-log finds the initial kernel; it does not go with --init or --init-kernel")
        }
        if (handLoss != nil || handRmse != nil) && fromKerasLog == nil {
            throw ValidationError("--hand-loss and --hand-rmse choose among the kernels --from-keras-log finds; give that too")
        }
        if (x != nil || y != nil) && csv == nil && !(validation.map { !$0.hasPrefix("split:") } ?? false) {
            throw ValidationError("--x and --y select CSV columns; use them with --csv")
        }
        if let delimiter {
            do { _ = try CSVFormat.delimiter(named: delimiter) } catch { throw ValidationError("\(error)") }
        }
        if (delimiter != nil || decimalComma != nil) && csv == nil && !(validation.map { !$0.hasPrefix("split:") } ?? false) {
            throw ValidationError("--delimiter and --decimal-comma describe a CSV file; use them with --csv")
        }
        if let epochs, epochs < 1 { throw ValidationError("--epochs must be at least 1") }
        if let batchSize, batchSize < 1 { throw ValidationError("--batch-size must be at least 1") }
        for (name, value) in [("--learning-rate", learningRate), ("--rho", rho), ("--momentum", momentum), ("--epsilon", epsilon),
                              ("--beta-1", beta1), ("--beta-2", beta2), ("--weight-decay", weightDecay),
                              ("--initial-accumulator-value", initialAccumulatorValue), ("--init-kernel", initKernel),
                              ("--init-bias", initBias)] {
            if let value, !value.isFinite { throw ValidationError("\(name) must be a finite number") }
        }
        if let pace { _ = try Self.milliseconds(pace) }
        if let shuffle { _ = try Self.shuffleValue(shuffle) }
        if let initializer { _ = try Self.initValue(initializer) }
    }

    /// "200ms", "1s", "1.5s" or a bare number of milliseconds.
    static func milliseconds(_ text: String) throws -> Int {
        let (number, scale): (Substring, Double) =
            text.hasSuffix("ms") ? (text.dropLast(2), 1) : text.hasSuffix("s") ? (text.dropLast(), 1000) : (Substring(text), 1)
        guard let value = Double(number), value.isFinite, value >= 0, value * scale <= 60_000 else {
            throw ValidationError("--pace \(text): use a duration like 200ms or 1.5s, at most 60s")
        }
        return Int((value * scale).rounded())
    }

    /// A bare `--shuffle` draws its seed here (as the daemon would for `true`), so the start output can name it.
    static func shuffleValue(_ text: String) throws -> JSONValue {
        let seed: UInt64
        switch text {
        case "true": seed = JobSpec.drawSeed()
        case "false": return .bool(false)
        default:
            guard let given = UInt64(text), given <= UInt64(UInt32.max) else {
                throw ValidationError("--shuffle=\(text): use --shuffle, --shuffle=SEED (an integer from 0 to 4294967295, as keras.utils.set_random_seed takes) or --shuffle=false")
            }
            seed = given
        }
        return .object([("seed", .number(String(seed)))])
    }

    static func initValue(_ text: String) throws -> JSONValue {
        let parts = text.split(separator: ":", maxSplits: 1).map(String.init)
        guard parts.count == 2, let seed = UInt64(parts[1]) else {
            throw ValidationError("--init \(text): use glorot:SEED or keras:SEED")
        }
        switch parts[0] {
        case "glorot", "glorot_uniform": return .object([("initializer", .string("glorot_uniform")), ("seed", .number(String(seed)))])
        case "keras": return .object([("initializer", .string("keras")), ("seed", .number(String(seed)))])
        default: throw ValidationError("--init \(text): use glorot:SEED or keras:SEED")
        }
    }

    /// The spec to send, as JSON: `--spec` (if any), then the example's defaults, then every explicit flag.
    func csvFormat() throws -> CSVFormat {
        CSVFormat(delimiter: try delimiter.map(CSVFormat.delimiter(named:)), decimalComma: decimalComma)
    }

    func buildSpec(pacedByDefault defaultPaceMs: Int? = nil) throws -> JSONValue {
        var spec: JSONValue = .object([])
        if let path = self.spec {
            let data: Data?
            if path == "-" { data = FileHandle.standardInput.readDataToEndOfFile() } else { data = FileManager.default.contents(atPath: path) }
            guard let data else { throw InputError("cannot read spec file \(path)") }
            do {
                spec = try JSONParser.parse(Array(data))
            } catch {
                throw InputError("spec file \(path) is not valid JSON: \(error)")
            }
            guard spec.objectMembers != nil else { throw InputError("spec file \(path) must hold a JSON object") }
        }

        var points: Points?
        if let csv { points = try CSVReader.read(path: csv, xColumn: x, yColumn: y, format: try csvFormat()) }
        if let synthetic { points = try SyntheticData(parsing: synthetic).generate() }
        if example == "colab" {
            points = .colab
            spec = spec.setting("init", .object([("kernel", JSONValue(0.5)), ("bias", JSONValue(0))]))
                .setting("optimizer", .object([("name", .string("rmsprop")), ("learning_rate", JSONValue(0.05))]))
                .setting("epochs", JSONValue(4)).setting("batch_size", JSONValue(4)).setting("shuffle", .bool(false))
        }
        if let validation {
            if validation.hasPrefix("split:") {
                guard let fraction = Double(validation.dropFirst(6)) else { throw InputError("--validation \(validation): F must be a number") }
                guard let all = points ?? (spec["data"].flatMap(Self.points)) else { throw InputError("--validation split: needs training data") }
                let parts = try all.split(validationFraction: fraction)
                points = parts.train
                spec = spec.setting("validation", parts.validation.json)
            } else {
                spec = spec.setting("validation", try CSVReader.read(path: validation, xColumn: x, yColumn: y, format: try csvFormat()).json)
            }
        }
        if let points { spec = spec.setting("data", points.json) }

        var optimizerObject = spec["optimizer"] ?? .object([("name", .string(KerasDefaults.optimizer.rawValue))])
        if let optimizer, optimizer != optimizerObject["name"]?.stringValue {
            // A different optimizer: the old one's hyper-parameters may not apply to it.
            optimizerObject = .object([("name", .string(optimizer))])
        }
        let hyper: [(String, JSONValue?)] = [
            ("learning_rate", learningRate.map(JSONValue.init)), ("rho", rho.map(JSONValue.init)),
            ("momentum", momentum.map(JSONValue.init)), ("epsilon", epsilon.map(JSONValue.init)),
            ("centered", centered.map(JSONValue.init)), ("nesterov", nesterov.map(JSONValue.init)),
            ("beta_1", beta1.map(JSONValue.init)), ("beta_2", beta2.map(JSONValue.init)),
            ("amsgrad", amsgrad.map(JSONValue.init)), ("weight_decay", weightDecay.map(JSONValue.init)),
            ("initial_accumulator_value", initialAccumulatorValue.map(JSONValue.init)),
        ]
        for case let (key, value?) in hyper { optimizerObject = optimizerObject.setting(key, value) }
        spec = spec.setting("optimizer", optimizerObject)

        if let epochs { spec = spec.setting("epochs", JSONValue(epochs)) }
        if let batchSize { spec = spec.setting("batch_size", JSONValue(batchSize)) }
        if let shuffle { spec = spec.setting("shuffle", try Self.shuffleValue(shuffle)) }
        if let initKernel {
            spec = spec.setting("init", .object([("kernel", JSONValue(initKernel)), ("bias", JSONValue(initBias ?? 0))]))
        }
        if let initializer { spec = spec.setting("init", try Self.initValue(initializer)) }
        if let precision { spec = spec.setting("precision", .string(precision)) }
        if let pace {
            spec = spec.setting("pace_ms", JSONValue(try Self.milliseconds(pace)))
        } else if let defaultPaceMs {
            spec = spec.setting("pace_ms", JSONValue(defaultPaceMs))
        }
        if paused { spec = spec.setting("paused", .bool(true)) }
        if let onDivergence { spec = spec.setting("on_divergence", .string(onDivergence)) }
        if let validationMode { spec = spec.setting("validation_mode", .string(validationMode)) }
        guard spec["data"] != nil else { throw InputError("the spec has no data; add --csv, --example or --synthetic") }
        if let fromKerasLog {
            spec = try FromKerasLog.resolve(spec, logLine: fromKerasLog, handLoss: handLoss, handRMSE: handRmse) { report in
                FileHandle.standardError.write(Data(report.utf8))
            }
        }
        return spec
    }

    private static func points(_ data: JSONValue) -> Points? {
        guard let x = data["x"]?.arrayValue?.compactMap(\.doubleValue), let y = data["y"]?.arrayValue?.compactMap(\.doubleValue) else { return nil }
        return Points(x: x, y: y)
    }
}

extension LTCtl {
    struct Start: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Start a training job.",
            discussion: """
            The data is read here and sent inline; the daemon never opens your files. Examples:
              ltctl start job1 --example colab
              ltctl start big --synthetic slope=3,intercept=-2,noise=0.5,n=100000,seed=1 --optimizer adam --learning-rate 0.1 --epochs 5 --batch-size 64
              ltctl start mine --csv data.csv --x area --y price --validation split:0.2 --shuffle=42
              ltctl start walk --example colab --paused   # then: ltctl step walk 3
            Prints the job's status (--json: the daemon's status object). With --follow, tails the job and exits as tail does.
            """)

        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var job: JobArgument
        @OptionGroup var options: SpecOptions
        @Flag(help: "Tail the job right away (exit codes as for tail).") var follow = false
        @Flag(help: "Print the daemon's status object (or, with --follow, its event lines) as JSON.") var json = false

        func validate() throws {
            guard JobName.isValid(job.name) else {
                throw ValidationError("start takes a short name (\(job.shortName)): a new job is always yours, and others see it as YOU/\(job.shortName)")
            }
        }

        func run() throws {
            try runReportingErrors {
                let spec = try options.buildSpec()
                let conn = try connection.connect()
                let reply = try conn.request("start", [("job", .string(job.name)), ("spec", spec)])
                if follow {
                    return try Tailer(connection: conn, job: job.name, options: TailSettings(json: json)).run()
                }
                let out = BufferedOutput(fd: STDOUT_FILENO)
                let status = reply["status"] ?? .object([])
                if json {
                    try out.write(status.serialized + "\n")
                } else {
                    try out.write(StatusText.summary(status, palette: Palette(fd: STDOUT_FILENO)) + "\n")
                    if let shuffle = spec["shuffle"], shuffle["seed"] != nil {
                        try out.write("  " + EventPrinter.describeShuffle(shuffle, keras: KerasVersion.current.rawValue) + "\n")
                    }
                    try out.write("Watch it with: ltctl tail \(job.name)\n")
                }
                try out.flush()
                return .success
            }
        }
    }
}
