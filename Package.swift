// swift-tools-version: 6.0
// ltd: watch, step by step, how Keras trains a one-feature linear regression.
//
// Dependencies point one way: executables → LTDaemon / LTClient / LTData → LTProtocol → LTEngine. Every target declares
// each target it imports.
// The engine knows nothing of sockets; the daemon knows nothing of optimizer maths.
import PackageDescription

let package = Package(
    name: "ltd",
    products: [
        .executable(name: "ltd", targets: ["ltd"]),
        .executable(name: "ltctl", targets: ["ltctl"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        // libuv from Debian's libuv1-dev, plus a tiny C shim for what Swift cannot express.
        .systemLibrary(name: "CLibUV", pkgConfig: "libuv", providers: [.apt(["libuv1-dev"])]),
        // Pure training engine: Keras-identical float32 arithmetic. No I/O.
        .target(name: "LTEngine"),
        // The wire format: JSON, job spec decoding, requests, events, error codes, default paths.
        .target(name: "LTProtocol", dependencies: ["LTEngine"]),
        // The libuv daemon: listener, connections, jobs, event logs, subscriptions, systemd glue.
        .target(name: "LTDaemon", dependencies: ["LTEngine", "LTProtocol", "CLibUV"]),
        // A small blocking Unix-socket client; needs no libuv.
        .target(name: "LTClient", dependencies: ["LTProtocol"]),
        // What ltctl reads from users' files: the CSV reader and its points. Pure text in, numbers out; fuzzed.
        .target(name: "LTData", dependencies: ["LTProtocol"]),
        // Pictures of a training run: SVG and terminal charts. Pure values in, text out; no I/O.
        .target(name: "LTPlot"),
        .executableTarget(name: "ltd", dependencies: [
            "LTDaemon", "LTProtocol", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "ltctl", dependencies: [
            "LTEngine", "LTProtocol", "LTClient", "LTData", "LTPlot",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        // Benchmarks: swift run -c release LTBench engine|codec|chart (results in docs/BENCHMARKS.md).
        .executableTarget(name: "LTBench", dependencies: ["LTEngine", "LTProtocol", "LTPlot"]),
        // Fixtures are read through #filePath, not bundled as resources.
        .testTarget(name: "LTEngineTests", dependencies: ["LTEngine"], exclude: ["Golden", "Initializers/Fixtures", "Shuffle/Fixtures"]),
        .testTarget(name: "LTProtocolTests", dependencies: ["LTEngine", "LTProtocol"]),
        .testTarget(name: "LTDaemonTests", dependencies: ["LTDaemon", "LTEngine", "LTProtocol"]),
        .testTarget(name: "LTClientTests", dependencies: ["LTClient"]),
        .testTarget(name: "LTPlotTests", dependencies: ["LTPlot"], exclude: ["Fixtures"]),
        .testTarget(name: "EndToEndTests", dependencies: ["LTProtocol", "LTClient", "LTDaemon"], exclude: ["Fixtures", "Snapshots"]),
    ],
    swiftLanguageModes: [.v6]
)
