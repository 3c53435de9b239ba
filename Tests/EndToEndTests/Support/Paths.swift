import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Why a harness step gave up; every wait has a timeout, so a broken daemon fails a test instead of hanging the suite.
struct HarnessFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Where the end-to-end tests find the built binaries, the repository, their fixtures, and scratch space.
enum Paths {
    /// The repository root, found from this file's path (Tests/EndToEndTests/Support/Paths.swift).
    static let repositoryRoot: URL = endToEndTests.deletingLastPathComponent().deletingLastPathComponent()

    /// Tests/EndToEndTests, which holds Fixtures/ and Snapshots/.
    static let endToEndTests: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    /// The Keras golden trace of the twelve-point example (epochs 4, batch 4): one copy, beside the engine's goldens.
    static let goldenTrace: URL = endToEndTests.deletingLastPathComponent().appendingPathComponent("LTEngineTests/Golden/seed_e4_b4.trace.ndjson")

    /// The directory of the built products: `LTD_BIN_DIR`, else the nearest directory above the test runner that
    /// holds `ltd` (SwiftPM puts `ltdPackageTests.xctest` next to `ltd` and `ltctl`), else `swift build --show-bin-path`.
    static let products: String = {
        if let override = ProcessInfo.processInfo.environment["LTD_BIN_DIR"], !override.isEmpty { return override }
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var directory = URL(fileURLWithPath: executable).deletingLastPathComponent()
        while directory.path != "/" {
            if FileManager.default.isExecutableFile(atPath: directory.appendingPathComponent("ltd").path) { return directory.path }
            directory = directory.deletingLastPathComponent()
        }
        let output = (try? Command.run(["swift", "build", "--show-bin-path"]).stdout) ?? ""
        return output.trimmingCharacters(in: .whitespacesAndNewlines)
    }()

    static var ltd: String { products + "/ltd" }
    static var ltctl: String { products + "/ltctl" }

    /// A script under scripts/.
    static func script(_ name: String) -> String { repositoryRoot.appendingPathComponent("scripts/" + name).path }

    /// A fresh directory under /tmp: short, so socket paths inside it fit in sun_path (107 bytes).
    static func temporaryDirectory(_ tag: String) throws -> String {
        var template = Array("/tmp/ltd-\(tag)-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { buffer -> UnsafeMutablePointer<CChar>? in
            guard let base = buffer.baseAddress else { return nil }
            return mkdtemp(base)
        }
        guard let made else { throw HarnessFailure("mkdtemp failed: errno \(errno)") }
        return String(cString: made)
    }

    /// Removes a file or a whole tree; a missing one is fine.
    static func remove(_ path: String) { try? FileManager.default.removeItem(atPath: path) }
}

/// Polls `condition` every 10 ms until it holds; throws once `timeout` has passed without it.
func waitUntil(_ what: String, timeout: Duration = .seconds(20), _ condition: () throws -> Bool) throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try condition() { return }
        usleep(10_000)
    }
    throw HarnessFailure("timed out after \(timeout) waiting for \(what)")
}
