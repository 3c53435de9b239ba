// ltd benchmarks. Run: swift run -c release LTBench engine|codec
// Prints Markdown tables; docs/BENCHMARKS.md records the numbers with the machine they ran on.
let arguments = CommandLine.arguments.dropFirst()
switch arguments.first {
case "engine", nil: EngineBenchmarks.run()
case "codec": CodecBenchmarks.run()
default: print("usage: LTBench engine|codec")
}
