// Exhaustive verification of ShortestDecimal for Float: every one of the 2^32 bit patterns.
//   swift run -c release LTBench dtoa-exhaustive [threads]
// For each finite pattern, the bytes must equal `Float.description` and parse back (Float(String)) to the same bits;
// NaNs and infinities must give their description too. Prints counts, mismatches and the time taken.
import Dispatch
#if canImport(Glibc)
import Glibc
#endif
import LTProtocol

enum DtoaExhaustive {
    struct Tally {
        var finite = 0, other = 0, mismatches = 0, roundTripFailures = 0
        var firstBad: [UInt32] = []
    }

    /// Checks the patterns `first ..< first + count` (count ≤ 2^32 − first).
    static func check(first: UInt64, count: UInt64) -> Tally {
        var tally = Tally()
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: ShortestDecimal.maxLength) { scratch in
            guard let base = scratch.baseAddress else { return }
            var pattern = first
            let end = first + count
            while pattern < end {
                let f = Float(bitPattern: UInt32(truncatingIfNeeded: pattern))
                let n = ShortestDecimal.write(f, to: base)
                var text = f.description
                let same = text.withUTF8 { utf8 in
                    guard utf8.count == n, let ours = utf8.baseAddress else { return utf8.count == n }
                    return memcmp(ours, base, n) == 0
                }
                if f.isFinite {
                    tally.finite += 1
                    let back = Float(String(decoding: UnsafeBufferPointer(start: base, count: n), as: UTF8.self))
                    if back?.bitPattern != f.bitPattern { tally.roundTripFailures += 1 }
                } else {
                    tally.other += 1
                }
                if !same {
                    tally.mismatches += 1
                    if tally.firstBad.count < 10 { tally.firstBad.append(f.bitPattern) }
                }
                pattern += 1
            }
        }
        return tally
    }

    static func run(threads: Int) {
        let chunks = 4096
        let perChunk = (UInt64(1) << 32) / UInt64(chunks)
        // One slot per chunk, each written by exactly one worker.
        struct Slots: @unchecked Sendable { let buffer: UnsafeMutableBufferPointer<Tally> }
        let slots = Slots(buffer: .allocate(capacity: chunks))
        slots.buffer.initialize(repeating: Tally())
        defer { slots.buffer.deallocate() }
        let clock = ContinuousClock()
        let start = clock.now
        let workers = max(1, threads)
        // Each worker takes every `workers`-th chunk.
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            var chunk = worker
            while chunk < chunks {
                slots.buffer[chunk] = check(first: UInt64(chunk) * perChunk, count: perChunk)
                chunk += workers
            }
        }
        let elapsed = clock.now - start
        var total = Tally()
        for r in slots.buffer {
            total.finite += r.finite; total.other += r.other
            total.mismatches += r.mismatches; total.roundTripFailures += r.roundTripFailures
            for b in r.firstBad where total.firstBad.count < 10 { total.firstBad.append(b) }
        }
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        print("Float bit patterns checked: \(total.finite + total.other) (finite \(total.finite), NaN/inf \(total.other))")
        print("mismatches against Float.description: \(total.mismatches)")
        print("round-trip failures (Float(String) of our bytes != the bits): \(total.roundTripFailures)")
        for b in total.firstBad {
            let f = Float(bitPattern: b)
            print("  0x\(String(b, radix: 16)): description \(f.description), ours \(ShortestDecimal.string(f))")
        }
        print("threads: \(workers), wall time: \(Int(seconds)) s")
    }
}
