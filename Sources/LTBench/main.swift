// ltd benchmarks. Run: swift run -c release LTBench engine|codec|dtoa-exhaustive
// Prints Markdown tables; docs/BENCHMARKS.md records the numbers with the machine they ran on.
let arguments = CommandLine.arguments.dropFirst()
switch arguments.first {
case "engine", nil: EngineBenchmarks.run()
case "codec": CodecBenchmarks.run()
case "dtoa-exhaustive": DtoaExhaustive.run(threads: arguments.dropFirst().first.flatMap { Int($0) } ?? 2)
default: print("usage: LTBench engine|codec|dtoa-exhaustive [threads]")
}
