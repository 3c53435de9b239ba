// Micro-benchmark of the event encoder (the daemon's hot path: one step event per optimizer step).
//   swift run -c release LTBench codec
// Records come from the real Trainer, then each is encoded many times with one `EventEncoder.JobEncoder` (as the
// daemon's job thread does); prints ns per encoded event.
// Time is this thread's CPU time, so other processes competing for the cores do not inflate it.
#if canImport(Glibc)
import Glibc
#endif
import LTEngine
import LTProtocol

enum CodecBenchmarks {
    /// Nanoseconds of CPU time this thread has used.
    static func cpuNanoseconds() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t)
        return Double(t.tv_sec) * 1e9 + Double(t.tv_nsec)
    }

    static func records(_ spec: JobSpec, limit: Int) -> [StepRecord] {
        guard var trainer = try? Trainer(spec: spec) else { print("spec rejected"); return [] }
        var steps: [StepRecord] = []
        while steps.count < limit, let event = trainer.next() {
            if case .step(let r) = event { steps.append(r) }
        }
        return steps
    }

    static func spec(points n: Int, batch: Int, precision: Precision = .float32, shuffle: Shuffle = .none) -> JobSpec {
        JobSpec(data: Dataset(x: (0..<n).map { Double($0 % 97) * 0.37 + 1 }, y: (0..<n).map { Double($0 % 89) * 1.3 + 0.5 }),
                initialization: .constant(kernel: 0.5, bias: 0), optimizer: OptimizerSpec(name: .rmsprop, learningRate: 0.05),
                epochs: 1000, batchSize: batch, shuffle: shuffle, precision: precision)
    }

    nonisolated(unsafe) static var sink = 0

    /// Encodes `records` round-robin `total` times; returns (ns per event, bytes per event).
    static func measure(_ s: JobSpec, _ rs: [StepRecord], total: Int, spelling: NumberSpelling = .ryu) -> (Double, Int) {
        guard !rs.isEmpty else { return (0, 0) }
        var bytes = 0
        // The job thread's encoder: built once per job.
        var encoder = EventEncoder.JobEncoder(job: "job1", spec: s)
        encoder.numberSpelling = spelling
        // Warm up.
        for i in 0..<min(total, 1000) { bytes &+= encoder.step(seq: i, record: rs[i % rs.count]).count }
        bytes = 0
        let start = cpuNanoseconds()
        for i in 0..<total {
            bytes &+= encoder.step(seq: i + 3, record: rs[i % rs.count]).count
        }
        let ns = cpuNanoseconds() - start
        sink &+= bytes
        return (ns / Double(total), bytes / total)
    }

    static func run() {
        let cases: [(String, JobSpec, Int)] = [
            ("batch 1, float32 (x/y/pred, 1 index)", spec(points: 1000, batch: 1), 1_000_000),
            ("batch 4, float32 (classic)", spec(points: 12, batch: 4), 1_000_000),
            ("batch 1, float64", spec(points: 1000, batch: 1, precision: .float64), 1_000_000),
            ("batch 64, float32 (largest with values)", spec(points: 6400, batch: 64), 100_000),
            ("batch 4096 contiguous (range)", spec(points: 40960, batch: 4096), 1_000_000),
            ("batch 1024 shuffled (1024 indices)", spec(points: 10240, batch: 1024, shuffle: .seeded(1)), 20_000),
        ]

        print("| event | ns/event | bytes/event | events/s |")
        print("|---|---:|---:|---:|")
        for (name, s, total) in cases {
            let (ns, bytes) = measure(s, records(s, limit: 1000), total: total)
            print("| \(name) | \(Int(ns.rounded())) | \(bytes) | \(Int((1e9 / ns).rounded())) |")
        }

        // The digits: hand-written Ryū against the standard library's `description` copied into the buffer (same
        // bytes). Alternating rounds in one run, so both see the same machine; the median of 5 rounds each.
        print("")
        print("| step event | Ryū ns/event | stdlib description ns/event | stdlib / Ryū |")
        print("|---|---:|---:|---:|")
        for (name, s, total) in cases.prefix(4) {
            let rs = records(s, limit: 1000)
            var ryu: [Double] = [], stdlib: [Double] = []
            for _ in 0..<5 {
                ryu.append(measure(s, rs, total: total / 4).0)
                stdlib.append(measure(s, rs, total: total / 4, spelling: .standardLibrary).0)
            }
            let r = ryu.sorted()[2], d = stdlib.sorted()[2]
            print("| \(name) | \(Int(r.rounded())) | \(Int(d.rounded())) | \(String(Int((d / r * 100).rounded())))% |")
        }
        print("")

        // Request decoding, for scale (requests are rare).
        let status = Array("{\"op\":\"status\",\"id\":4,\"job\":\"job1\"}\n".utf8)
        let n = 500_000
        let t0 = cpuNanoseconds()
        for _ in 0..<n { if case .success = RequestLine.decode(status) { sink &+= 1 } }
        let ns = (cpuNanoseconds() - t0) / Double(n)
        print("| decode status request | \(Int(ns.rounded())) | \(status.count) | \(Int((1e9 / ns).rounded())) |")
        if sink == 42 { print("") }
    }
}
