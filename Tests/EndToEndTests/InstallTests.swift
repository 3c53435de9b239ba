import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `scripts/install` into a staging directory (DESTDIR): the release build it makes (about two minutes the first
/// time, then incremental) must run without the Swift toolchain, and the units must name the chosen prefix.
@Suite(.serialized) struct InstallTests {
    static let prefix = "/opt/ltd-test"

    static func install(_ extra: [String]) throws -> (destdir: String, output: String) {
        let destdir = try Paths.temporaryDirectory("install")
        // The first release build takes minutes on a shared machine.
        let result = try Command.run(["bash", Paths.script("install"), "--prefix", prefix, "--destdir", destdir] + extra,
                                     stderr: .intoStdout, timeout: .seconds(1800))
        guard result.status == 0 else {
            Paths.remove(destdir)
            throw HarnessFailure("scripts/install exited \(result.status):\n\(result.stdout)")
        }
        return (destdir, result.stdout)
    }

    static func mode(_ path: String) -> mode_t? {
        var info = stat()
        return stat(path, &info) == 0 ? info.st_mode & 0o7777 : nil
    }

    static var toolchainDirectory: String {
        // The directory holding the toolchain's bin/swift, e.g. /opt/swift/usr.
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        for directory in path.split(separator: ":") where FileManager.default.isExecutableFile(atPath: "\(directory)/swift") {
            let swift = URL(fileURLWithPath: "\(directory)/swift").resolvingSymlinksInPath()
            return swift.deletingLastPathComponent().deletingLastPathComponent().path
        }
        return "/opt/swift"
    }

    @Test func installsSelfContainedBinariesAndPrefixedUnits() throws {
        let (destdir, _) = try Self.install(["--no-completions", "--no-man"])
        defer { Paths.remove(destdir) }
        let root = destdir + Self.prefix

        for binary in ["ltd", "ltctl"] {
            let path = root + "/bin/" + binary
            #expect(Self.mode(path) == 0o755, "\(path)")
            let ldd = try Command.run(["ldd", path], stderr: .intoStdout)
            #expect(ldd.status == 0, "\(ldd.stdout)")
            #expect(!ldd.stdout.contains(Self.toolchainDirectory), "\(binary) links the toolchain:\n\(ldd.stdout)")
            #expect(!ldd.stdout.contains("libswift") && !ldd.stdout.contains("libFoundation"), "\(ldd.stdout)")
            #expect(!ldd.stdout.contains("not found"), "\(ldd.stdout)")
            // No PATH, no LD_LIBRARY_PATH, nothing from the build environment.
            let help = try Command.run(["env", "-i", path, "--help"], stderr: .intoStdout)
            #expect(help.status == 0, "\(binary) --help under env -i:\n\(help.stdout)")
        }

        for unit in ["lib/systemd/system/ltd.service", "lib/systemd/user/ltd.service"] {
            let text = try String(contentsOfFile: root + "/" + unit, encoding: .utf8)
            #expect(text.contains("\nExecStart=\(Self.prefix)/bin/ltd\n"), "\(unit)")
            #expect(!text.contains("/usr/local"), "\(unit) still names /usr/local")
        }
        for file in ["lib/systemd/system/ltd.socket", "lib/systemd/user/ltd.socket", "lib/sysusers.d/ltd.conf",
                     "share/doc/ltd/README.md", "share/doc/ltd/SERVICE.md", "share/doc/ltd/PROTOCOL.md",
                     "share/doc/ltd/TEACHING.md", "share/doc/ltd/RELIABILITY.md"] {
            #expect(Self.mode(root + "/" + file) == 0o644, "\(file)")
        }
        let socket = try String(contentsOfFile: root + "/lib/systemd/system/ltd.socket", encoding: .utf8)
        #expect(socket.contains("\nListenStream=/run/ltd/ltd.sock\n") && socket.contains("\nSocketGroup=ltd\n"))
    }

    /// Completions come from `ltctl --generate-completion-script`, man pages from swift-argument-parser's
    /// generate-manual over the real ltctl and ltd.
    @Test func installsCompletionsAndManPages() throws {
        do {
            let (destdir, _) = try Self.install([])
            defer { Paths.remove(destdir) }
            let share = destdir + Self.prefix + "/share"
            for (file, marker) in [("bash-completion/completions/ltctl", "complete"),
                                   ("zsh/site-functions/_ltctl", "#compdef ltctl"),
                                   ("fish/vendor_completions.d/ltctl.fish", "complete -c 'ltctl'")] {
                let text = try String(contentsOfFile: share + "/" + file, encoding: .utf8)
                #expect(text.contains(marker), "\(file)")
            }
            for page in ["man1/ltctl.1", "man8/ltd.8", "man1/ltctl.explain.1"] {
                let text = try String(contentsOfFile: share + "/man/" + page, encoding: .utf8)
                #expect(text.contains(".Sh NAME"), "\(page)")
                // mdoc allows no blank line (lintian's groff-message), and whatis reads a NAME with no spaces.
                #expect(!text.contains("\n\n"), "\(page) has a blank line")
            }
            let explain = try String(contentsOfFile: share + "/man/man1/ltctl.explain.1", encoding: .utf8)
            #expect(explain.contains(".Sh NAME\n.Nm ltctl-explain\n") && explain.contains(".Sh SYNOPSIS\n.Nm \"ltctl explain\"\n"))
            let bash = try String(contentsOfFile: share + "/bash-completion/completions/ltctl", encoding: .utf8)
            #expect(!bash.hasPrefix("#!"), "a completion is sourced: no #! line")
        }
    }
}
