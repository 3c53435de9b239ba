import ArgumentParser
import Foundation
import LTData
import LTClient
import LTProtocol

/// ltctl's exit codes. `tail` (and `start --follow`, `demo`) end with the job's final state.
enum ExitStatus: Int32 {
    /// Success; for tail: the job finished (or --no-follow reached the point it subscribed at).
    case success = 0
    /// The daemon refused the request (unknown job, permission denied, wrong state, invalid spec, ...) or an input
    /// file could not be used.
    case refused = 1
    /// tail: the job was cancelled.
    case cancelled = 3
    /// tail: the job diverged (loss became NaN or infinite).
    case diverged = 4
    /// tail: the job failed inside the daemon.
    case failed = 5
    /// Bad command line (swift-argument-parser's EX_USAGE).
    case usage = 64
    /// No daemon answers at the socket, or the one that does runs as another user (EX_UNAVAILABLE).
    case unavailable = 69
    /// The connection broke or the daemon sent something unexpected (EX_PROTOCOL).
    case protocolError = 76
    /// watch: ended by Ctrl-C or a signal (128 + SIGINT, as a shell reports it).
    case interrupted = 130

    static let helpText = """
        Exit codes: 0 success (tail: job finished); 1 the daemon refused the request or an input file is unusable; \
        3 job cancelled; 4 job diverged; 5 job failed (3-5 from tail, start --follow, demo); 64 usage error; \
        69 daemon unreachable or not trusted; 76 connection lost or protocol error; 130 watch ended by Ctrl-C.
        """

    /// The exit status for a job that ended in `state`.
    static func forFinalState(_ state: JobState?) -> ExitStatus {
        switch state {
        case .cancelled?: return .cancelled
        case .diverged?: return .diverged
        case .failed?, .damaged?: return .failed
        case .finished?, .running?, .paused?: return .success
        case nil: return .protocolError
        }
    }

    static func forError(_ error: ClientError) -> ExitStatus {
        switch error {
        case .daemon: return .refused
        case .cannotConnect, .socketPathTooLong, .untrustedDaemon: return .unavailable
        case .connectionClosed, .io, .protocolViolation: return .protocolError
        case .outputClosed: return .success
        case .badHost: return .usage
        case .missingCapability: return .refused
        case .cannotStart: return .unavailable
        case .transportEnded(_, _, let status): return status == 0 ? .protocolError : .unavailable
        }
    }
}

/// Runs a command body, turning client and input errors into a message on stderr and a documented exit code.
func runReportingErrors(_ body: () throws -> ExitStatus) throws {
    let status: ExitStatus
    do {
        status = try body()
    } catch let error as ClientError {
        if case .outputClosed = error { throw ExitCode(ExitStatus.success.rawValue) }
        printError(Format.describe(error))
        status = ExitStatus.forError(error)
    } catch let error as InputError {
        printError(error.description)
        status = .refused
    }
    if status != .success { throw ExitCode(status.rawValue) }
}

func printError(_ message: String) {
    FileHandle.standardError.write(Data(("ltctl: " + message + "\n").utf8))
}
