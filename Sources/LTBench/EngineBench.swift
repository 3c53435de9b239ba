// Engine benchmarks: swift run -c release LTBench engine
// Steps/s at batch 1 with full records, rows/s on full-batch steps over 10M points, and per-step validation cost
// (exact vs fast). Times are this thread's CPU time; setup (validation, conversion, statistics) is reported apart.
#if canImport(Glibc)
import Glibc
#endif
import LTEngine

/// Deterministic y ≈ 3x − 2 with noise (SplitMix64), x in [−2, 2).
func line(count n: Int, seed: UInt64) -> Dataset {
    var rng = SplitMix64(seed: seed)
    func unit() -> Double { rng.nextUnit() }
    var x = [Double](), y = [Double]()
    x.reserveCapacity(n); y.reserveCapacity(n)
    for _ in 0..<n {
        let xi = unit() * 4 - 2
        x.append(xi); y.append(3 * xi - 2 + (unit() - 0.5))
    }
    return Dataset(x: x, y: y)
}

struct Outcome {
    var steps = 0; var seconds = 0.0; var setupSeconds = 0.0; var checksum = 0.0
    /// The fastest single step (only when timed per step): robust against other processes on a shared machine.
    var fastestStep = Double.infinity
}

/// Seconds of CPU time this thread has used: other processes competing for the 2 shared cores do not inflate it.
func cpuSeconds() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
}

/// Runs the spec to the end, touching every record so nothing is optimised away. Best of `repeats`.
func measure(_ spec: JobSpec, repeats: Int = 3, timeEachStep: Bool = false) -> Outcome {
    var best = Outcome(seconds: .infinity)
    for _ in 0..<repeats {
        var outcome = Outcome()
        let setup = cpuSeconds()
        guard var trainer = try? Trainer(spec: spec) else { print("invalid benchmark spec"); return best }
        outcome.setupSeconds = cpuSeconds() - setup
        let start = cpuSeconds()
        var before = start
        while let event = trainer.next() {
            if timeEachStep {
                let now = cpuSeconds()
                if case .step = event { outcome.fastestStep = min(outcome.fastestStep, now - before) }
                before = now
            }
            if case let .step(s) = event {
                outcome.steps += 1
                outcome.checksum += s.wAfter + s.valLoss + s.slots.kernel.0 + Double(s.batch[0])
            }
        }
        outcome.seconds = cpuSeconds() - start
        let fastest = min(best.fastestStep, outcome.fastestStep)
        if outcome.seconds < best.seconds { best = outcome }
        best.fastestStep = fastest
    }
    return best
}

func format(_ v: Double) -> String {
    if v >= 1e9 { return "\(Double(Int(v / 1e7)) / 100) G" }
    if v >= 1e6 { return "\(Double(Int(v / 1e4)) / 100) M" }
    if v >= 1e3 { return "\(Double(Int(v / 10)) / 100) k" }
    return "\(Double(Int(v * 100)) / 100) "
}

enum EngineBenchmarks {
    /// `only`: run just the rows whose name contains it (e.g. "batch 1, N"), and skip the validation table.
    static func run(only: String? = nil) {
        print("| benchmark | steps | setup (s) | stepping (s) | steps/s | rows/s | rows/s, fastest step |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        func row(_ name: String, _ spec: @autoclosure () -> JobSpec, rowsPerStep: Int, repeats: Int = 3) {
            if let only, !name.contains(only) { return }
            let spec = spec()
            let timeEachStep = rowsPerStep >= 1_000_000
            let o = measure(spec, repeats: repeats, timeEachStep: timeEachStep)
            let stepsPerSecond = Double(o.steps) / o.seconds
            let fastest = timeEachStep ? "\(format(Double(rowsPerStep) / o.fastestStep))/s" : "–"
            print("| \(name) | \(o.steps) | \(Double(Int(o.setupSeconds * 1000)) / 1000) "
                  + "| \(Double(Int(o.seconds * 1000)) / 1000) | \(format(stepsPerSecond))/s "
                  + "| \(format(stepsPerSecond * Double(rowsPerStep)))/s | \(fastest) |")
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

        // Exact validation after every batch-1 step: Keras's evaluate with batch_size 1, one float32 chain of adds
        // per validation row. rows/s here counts validation rows.
        for nv in [1_000, 10_000] {
            row("batch 1, exact validation on \(nv) rows, rmsprop, float32 (rows = validation rows)",
                JobSpec(data: line(count: 100, seed: 6), validation: line(count: nv, seed: 7),
                        optimizer: OptimizerSpec(name: .rmsprop), epochs: 100_000_000 / nv / 100, batchSize: 1),
                rowsPerStep: nv)
        }

        let bigRows = ["full batch, N = 10M, sgd, fast validation, float32", "full batch, N = 10M, sgd, exact validation",
                       "full batch, N = 10M, sgd, fast validation, float64", "batch 1,024, N = 10M, sgd, shuffled"]
        if let only, !bigRows.contains(where: { $0.contains(only) }) { return }
        let big = line(count: 10_000_000, seed: 3)
        row("full batch, N = 10M, sgd, fast validation, float32",
            JobSpec(data: big, optimizer: OptimizerSpec(name: .sgd, learningRate: 0.1), epochs: 20,
                    batchSize: 10_000_000, validationMode: .fast), rowsPerStep: 10_000_000, repeats: 5)
        row("full batch, N = 10M, sgd, exact validation (10M points), float32",
            JobSpec(data: big, optimizer: OptimizerSpec(name: .sgd, learningRate: 0.1), epochs: 10,
                    batchSize: 10_000_000), rowsPerStep: 10_000_000, repeats: 5)
        row("full batch, N = 10M, sgd, fast validation, float64",
            JobSpec(data: big, optimizer: OptimizerSpec(name: .sgd, learningRate: 0.1), epochs: 10,
                    batchSize: 10_000_000, precision: .float64, validationMode: .fast), rowsPerStep: 10_000_000, repeats: 5)
        row("batch 1,024, N = 10M, sgd, shuffled every epoch, fast validation, float32",
            JobSpec(data: big, optimizer: OptimizerSpec(name: .sgd, learningRate: 0.1), epochs: 2,
                    batchSize: 1_024, shuffle: .everyEpoch(seed: 5), validationMode: .fast),
            rowsPerStep: 1_024, repeats: 1)

        // Per-step validation cost against the validation set's size, and how far .fast is from .exact.
        if only != nil { return }
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
}
