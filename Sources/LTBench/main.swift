// ltd benchmarks. Run: swift run -c release LTBench engine [ROWS]|codec|chart|dtoa-exhaustive
// (engine ROWS: only the rows whose name contains ROWS, e.g. "batch 1, N")
// Prints Markdown tables; docs/BENCHMARKS.md records the numbers with the machine they ran on.
let arguments = CommandLine.arguments.dropFirst()
switch arguments.first {
case "engine", nil: EngineBenchmarks.run(only: arguments.dropFirst().first)
case "codec": CodecBenchmarks.run()
case "chart": ChartBenchmarks.run()
case "dtoa-exhaustive": DtoaExhaustive.run(threads: arguments.dropFirst().first.flatMap { Int($0) } ?? 2)
default: print("usage: LTBench engine [ROWS] | codec | chart | dtoa-exhaustive [threads]")
}
