import ArgumentParser
import Foundation
import LTClient
import LTProtocol

extension LTCtl {
    struct DialStdio: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "dial-stdio",
            abstract: "Join standard input and output to the daemon's socket (what `--host ssh://…` runs on the far side).",
            discussion: """
            `ltctl --host ssh://alice@box tail job1` runs `ssh alice@box ltctl dial-stdio` and speaks the protocol \
            through it, so the daemon on box sees alice, the ssh login user, as the caller. dial-stdio relays bytes \
            both ways until the daemon closes the connection or the other side goes away (its input ends and its \
            output is closed). It exits 69 when no daemon answers at the socket.
            """)

        @Option(help: ArgumentHelp("The daemon's socket (default: as for every command, LTD_SOCKET and so on).", valueName: "path"))
        var socket: String?

        func run() throws {
            let path = socket ?? DefaultPaths.clientSocket(environment: ProcessInfo.processInfo.environment)
            let connection: Connection
            do {
                connection = try Connection(socketPath: path)
            } catch let error as ClientError {
                printError(error.description)
                throw ExitCode(ExitStatus.forError(error).rawValue)
            }
            signal(SIGPIPE, SIG_IGN)
            Relay(socket: connection.fd).run()
        }
    }
}

/// Copies stdin to the socket and the socket to stdout. When stdin ends the socket's write side is shut down
/// (a client may still be reading replies); the relay ends when the socket ends, or when stdout is closed by the
/// reader (sshd closes it when the ssh connection drops: that is how a killed ssh frees the daemon's connection).
private struct Relay {
    let socket: Int32

    func run() {
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        var inputOpen = true
        while true {
            var fds = [pollfd(fd: socket, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: STDOUT_FILENO, events: 0, revents: 0),
                       pollfd(fd: inputOpen ? STDIN_FILENO : -1, events: Int16(POLLIN), revents: 0)]
            guard poll(&fds, nfds_t(fds.count), -1) >= 0 || errno == EINTR else { return }
            if fds[1].revents & Int16(POLLERR | POLLHUP) != 0 { return }
            if fds[0].revents != 0 {
                let n = read(socket, &buffer, buffer.count)
                if n <= 0 { return }
                guard writeAll(STDOUT_FILENO, buffer, n) else { return }
            }
            if inputOpen, fds[2].revents != 0 {
                let n = read(STDIN_FILENO, &buffer, buffer.count)
                if n <= 0 {
                    inputOpen = false
                    shutdown(socket, Int32(SHUT_WR))
                } else if !writeAll(socket, buffer, n) {
                    return
                }
            }
        }
    }

    private func writeAll(_ fd: Int32, _ bytes: [UInt8], _ count: Int) -> Bool {
        var offset = 0
        while offset < count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress.map { $0 + offset }, count - offset) }
            if n > 0 { offset += n } else if n < 0 && errno == EINTR { continue } else { return false }
        }
        return true
    }
}
