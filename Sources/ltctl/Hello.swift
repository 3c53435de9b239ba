import ArgumentParser
import Foundation
import LTClient
import LTProtocol

extension LTCtl {
    struct Hello: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Ask the daemon who it is: its version, protocol, pid, and the uid it sees you as.",
            discussion: "Useful to check which daemon a socket leads to. --json prints the daemon's reply.")

        @OptionGroup var connection: ConnectionOptions
        @Flag(help: "Print the daemon's hello reply as JSON.") var json = false

        func run() throws {
            try runReportingErrors {
                let reply = try connection.connect().request("hello")
                let out = BufferedOutput(fd: STDOUT_FILENO)
                if json {
                    try out.write(reply.serialized + "\n")
                } else {
                    let version = reply["version"]?.stringValue ?? "?"
                    let proto = reply["protocol"]?.intValue.map(String.init) ?? "?"
                    let pid = reply["pid"]?.intValue.map(String.init) ?? "?"
                    try out.write("ltd \(version) (protocol \(proto)), pid \(pid), at \(try connection.endpoint()); "
                                  + "you are \(Format.owner(reply["uid"]?.intValue))\n")
                }
                try out.flush()
                return .success
            }
        }
    }
}
