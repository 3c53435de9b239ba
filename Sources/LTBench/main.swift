// ltd benchmarks. Run: swift run -c release LTBench engine|codec|dtoa-exhaustive
// Prints a Markdown table; docs/BENCHMARKS.md records the numbers with the machine they ran on.
import LTEngine

/// Deterministic y ≈ 3x − 2 with noise (SplitMix64), x in [−2, 2).
func line(count n: Int, seed: UInt64) -> Dataset {
    var state = seed
    func unit() -> Double {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return Double((z ^ (z >> 31)) >> 11) / Double(1 << 53)
    }
    var x = [Double](), y = [Double]()
    x.reserveCapacity(n); y.reserveCapacity(n)
    for _ in 0..<n {
        let xi = unit() * 4 - 2
        x.append(xi); y.append(3 * xi - 2 + (unit() - 0.5))
    }
    return Dataset(x: x, y: y)
}

struct Outcome { var steps = 0; var seconds = 0.0; var setupSeconds = 0.0; var checksum = 0.0 }

func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18 }

/// Runs the spec to the end, touching every record so nothing is optimised away. Best of `repeats`.
func measure(_ spec: JobSpec, repeats: Int = 3) -> Outcome {
    var best = Outcome(seconds: .infinity)
    for _ in 0..<repeats {
        var outcome = Outcome()
        let clock = ContinuousClock()
        let setup = clock.now
        guard var trainer = try? Trainer(spec: spec) else { print("invalid benchmark spec"); return best }
        outcome.setupSeconds = seconds(clock.now - setup)
        let start = clock.now
        while let event = trainer.next() {
            if case let .step(s) = event {
                outcome.steps += 1
                outcome.checksum += s.wAfter + s.valLoss + s.slots.kernel.0 + Double(s.batch[0])
            }
        }
        outcome.seconds = seconds(clock.now - start)
        if outcome.seconds < best.seconds { best = outcome }
    }
    return best
}

func format(_ v: Double) -> String {
    if v >= 1e9 { return "\(Double(Int(v / 1e7)) / 100) G" }
    if v >= 1e6 { return "\(Double(Int(v / 1e4)) / 100) M" }
    if v >= 1e3 { return "\(Double(Int(v / 10)) / 100) k" }
    return "\(Double(Int(v * 100)) / 100) "
}

func engineBenchmarks() {
    print("| benchmark | steps | setup (s) | stepping (s) | steps/s | rows/s |")
    print("|---|---:|---:|---:|---:|---:|")
    func row(_ name: String, _ spec: JobSpec, rowsPerStep: Int, repeats: Int = 3) {
        let o = measure(spec, repeats: repeats)
        let stepsPerSecond = Double(o.steps) / o.seconds
        print("| \(name) | \(o.steps) | \(Double(Int(o.setupSeconds * 1000)) / 1000) "
              + "| \(Double(Int(o.seconds * 1000)) / 1000) | \(format(stepsPerSecond))/s "
              + "| \(format(stepsPerSecond * Double(rowsPerStep)))/s |")
    }
    let small = line(count: 1_000, seed: 1)
    for name in [OptimizerName.sgd, .rmsprop, .adam] {
        row("batch 1, N = 1,000, \(name.rawValue), fast validation, float32",
            JobSpec(data: small, optimizer: OptimizerSpec(name: name), epochs: 2_000, batchSize: 1,
                    validationMode: .fast), rowsPerStep: 1)
    }
    row("batch 1, N = 1,000, adam, seeded shuffle, fast validation, float32",
        JobSpec(data: small, optimizer: OptimizerSpec(name: .adam), epochs: 2_000, batchSize: 1, shuffle: .seeded(1),
                validationMode: .fast), rowsPerStep: 1)
    row("batch 1, N = 12, rmsprop, exact validation (12 points), float32",
        JobSpec(data: line(count: 12, seed: 2), optimizer: OptimizerSpec(name: .rmsprop), epochs: 200_000,
                batchSize: 1), rowsPerStep: 1)
    row("batch 1, N = 1,000, sgd, fast validation, float64",
        JobSpec(data: small, optimizer: OptimizerSpec(name: .sgd), epochs: 2_000, batchSize: 1, precision: .float64,
                validationMode: .fast), rowsPerStep: 1)

    let big = line(count: 10_000_000, seed: 3)
    row("full batch, N = 10M, sgd, fast validation, float32",
        JobSpec(data: big, optimizer: OptimizerSpec(name: .sgd, learningRate: 0.1), epochs: 20,
                batchSize: 10_000_000, validationMode: .fast), rowsPerStep: 10_000_000, repeats: 2)
    row("full batch, N = 10M, sgd, exact validation (10M points), float32",
        JobSpec(data: big, optimizer: OptimizerSpec(name: .sgd, learningRate: 0.1), epochs: 10,
                batchSize: 10_000_000), rowsPerStep: 10_000_000, repeats: 2)
    row("full batch, N = 10M, sgd, fast validation, float64",
        JobSpec(data: big, optimizer: OptimizerSpec(name: .sgd, learningRate: 0.1), epochs: 10,
                batchSize: 10_000_000, precision: .float64, validationMode: .fast), rowsPerStep: 10_000_000, repeats: 2)
    row("batch 1,024, N = 10M, sgd, shuffled every epoch, fast validation, float32",
        JobSpec(data: big, optimizer: OptimizerSpec(name: .sgd, learningRate: 0.1), epochs: 2,
                batchSize: 1_024, shuffle: .everyEpoch(seed: 5), validationMode: .fast),
        rowsPerStep: 1_024, repeats: 1)

    // Per-step validation cost against the validation set's size, and how far .fast is from .exact.
    print("")
    print("| validation set | batch | exact: steps/s | fast: steps/s | max relative difference (loss, rmse) |")
    print("|---:|---:|---:|---:|---:|")
    for (nv, batch) in [(1_000, 32), (100_000, 32), (1_000_000, 1_000)] {
        let train = line(count: 2_000, seed: 4), validation = line(count: nv, seed: 5)
        var spec = JobSpec(data: train, validation: validation, optimizer: OptimizerSpec(name: .adam, learningRate: 0.05),
                           epochs: nv >= 1_000_000 ? 1 : 3, batchSize: batch)
        let exact = measure(spec, repeats: 1)
        spec.validationMode = .fast
        let fast = measure(spec, repeats: 1)
        var worst = 0.0
        spec.validationMode = .exact
        if var a = try? Trainer(spec: spec) {
            spec.validationMode = .fast
            if var b = try? Trainer(spec: spec) {
                while let ea = a.next(), let eb = b.next() {
                    if case let .step(sa) = ea, case let .step(sb) = eb {
                        worst = max(worst, abs(sa.valLoss - sb.valLoss) / sa.valLoss,
                                    abs(sa.valRmse - sb.valRmse) / sa.valRmse)
                    }
                }
            }
        }
        print("| \(nv) | \(batch) | \(format(Double(exact.steps) / exact.seconds))/s "
              + "| \(format(Double(fast.steps) / fast.seconds))/s | \(worst) |")
    }
}

let arguments = CommandLine.arguments.dropFirst()
switch arguments.first {
case "engine", nil: engineBenchmarks()
case "codec": CodecBenchmarks.run()
case "dtoa-exhaustive": DtoaExhaustive.run(threads: arguments.dropFirst().first.flatMap { Int($0) } ?? 2)
default: print("usage: LTBench engine|codec|dtoa-exhaustive [threads]")
}
