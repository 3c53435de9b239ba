import ArgumentParser
import Foundation
import LTClient
import LTProtocol

/// `--socket`, shared by every command.
struct ConnectionOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "The daemon's socket.",
        discussion: "Default: LTD_SOCKET, else /run/ltd/ltd.sock as root, else $XDG_RUNTIME_DIR/ltd/ltd.sock, or /run/ltd/ltd.sock when only the system service runs.",
        valueName: "path"),
        completion: .file())
    var socket: String?

    @Option(name: .long, help: ArgumentHelp(
        "A daemon on another machine: ssh://user@host[:port][/remote/socket] (default: LTD_HOST).",
        discussion: "ltctl runs `ssh user@host ltctl dial-stdio`, which joins the remote daemon's socket as the ssh login user; ssh is $LTD_SSH (default ssh), the remote ltctl $LTD_REMOTE_LTCTL (default ltctl). --socket with --host names the remote socket.",
        valueName: "url"))
    var host: String?

    private var environment: [String: String] { ProcessInfo.processInfo.environment }

    /// This machine's socket: --socket, else LTD_SOCKET, else the default for this user.
    var socketPath: String { socket ?? DefaultPaths.clientSocket(environment: environment) }

    /// Where the daemon is: --host (or LTD_HOST) for another machine, else this machine's socket.
    func endpoint() throws -> Endpoint {
        guard let host = host ?? environment["LTD_HOST"].flatMap({ $0.isEmpty ? nil : $0 }) else { return .socket(socketPath) }
        var endpoint = try Endpoint.parse(host: host)
        if case .ssh(var target) = endpoint, let socket {
            target.remoteSocket = target.remoteSocket ?? socket
            endpoint = .ssh(target)
        }
        return endpoint
    }

    func connect() throws -> Connection { try Connection(endpoint: try endpoint(), environment: environment) }
}

/// The argument naming a job, checked against the daemon's rule before anything is sent: NAME for one's own job,
/// OWNER/NAME for another user's.
struct JobArgument: ParsableArguments {
    @Argument(help: "The job's name: NAME for yours, OWNER/NAME for another user's (e.g. alice/job1).",
              completion: .custom(completeJobNames))
    var name: String

    func validate() throws {
        guard JobReference(name) != nil else {
            throw ValidationError("invalid job name \"\(name)\": use \(JobReference.rule)")
        }
    }

    /// The short name (without OWNER/).
    var shortName: String { JobReference(name)?.name ?? name }
}

/// Shell completion of job names: asks the daemon at the default socket, silently offering nothing if it is down.
@Sendable func completeJobNames(_ arguments: [String], _ index: Int, _ prefix: String) -> [String] {
    var socket = DefaultPaths.clientSocket(environment: ProcessInfo.processInfo.environment)
    if let i = arguments.firstIndex(of: "--socket"), i + 1 < arguments.count { socket = arguments[i + 1] }
    guard let connection = try? Connection(socketPath: socket),
          let reply = try? connection.request("list"),
          let jobs = reply["jobs"]?.arrayValue else { return [] }
    return jobs.compactMap { $0["job"]?.stringValue }.filter { $0.hasPrefix(prefix) }
}
