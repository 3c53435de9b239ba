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
            Start.self, Tail.self, Watch.self, List.self, Board.self, Status.self, Hello.self,
            Pause.self, Resume.self, Step.self, Cancel.self, Delete.self, Prune.self,
            Compare.self, Diff.self, Replicate.self, Explain.self, Export.self, Plot.self, Top.self, Demo.self, DialStdio.self,
        ]
    )

    /// `ltctl --host ssh://alice@box tail job1`, as `docker -H …` reads: the connection options (`--host`,
    /// `--socket`) may come before the subcommand, and are moved after it, where each subcommand declares them.
    static func movingConnectionOptions(_ arguments: [String]) -> [String] {
        var leading: [String] = []
        var rest = arguments[...]
        while let first = rest.first {
            if first == "--host" || first == "--socket", rest.count >= 2 {
                leading += rest.prefix(2)
                rest = rest.dropFirst(2)
            } else if first.hasPrefix("--host=") || first.hasPrefix("--socket=") {
                leading.append(first)
                rest = rest.dropFirst()
            } else {
                break
            }
        }
        guard !leading.isEmpty, let subcommand = rest.first else { return arguments }
        return [subcommand] + leading + rest.dropFirst()
    }

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
        main(movingConnectionOptions(arguments))
    }
}
