import ArgumentParser
import Foundation
import LTClient
import LTProtocol

/// `ltctl`: start, watch, control and explain ltd training jobs.
@main
struct LTCtl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ltctl",
        abstract: "Start, watch, control and explain ltd training jobs.",
        discussion: """
        ltd trains a one-feature linear regression exactly as Keras `model.fit` does and streams one event per \
        optimizer step. ltctl talks to it over its Unix socket (--socket, LTD_SOCKET, else /run/ltd/ltd.sock as \
        root, else $XDG_RUNTIME_DIR/ltd/ltd.sock).

        First run: `ltctl demo` (starts a private daemon if none is running).

        \(ExitStatus.helpText)

        Shell completions: `ltctl --generate-completion-script bash|zsh|fish`.
        """,
        version: DefaultPaths.daemonVersion,
        subcommands: [
            Start.self, Tail.self, Watch.self, List.self, Status.self, Hello.self,
            Pause.self, Resume.self, Step.self, Cancel.self, Delete.self,
            Compare.self, Explain.self, Export.self, Plot.self, Demo.self,
        ]
    )

    /// `--shuffle` takes an optional value (`--shuffle` or `--shuffle=SEED`), which swift-argument-parser cannot
    /// express; a bare `--shuffle` is rewritten to `--shuffle=true` before parsing.
    static func main() {
        var arguments = Array(CommandLine.arguments.dropFirst())
        if let end = arguments.firstIndex(of: "--") {
            arguments[..<end] = ArraySlice(arguments[..<end].map { $0 == "--shuffle" ? "--shuffle=true" : $0 })
        } else {
            arguments = arguments.map { $0 == "--shuffle" ? "--shuffle=true" : $0 }
        }
        signal(SIGPIPE, SIG_IGN)
        main(arguments)
    }
}
