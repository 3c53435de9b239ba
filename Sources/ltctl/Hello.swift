import ArgumentParser
import Foundation
import LTClient
import LTProtocol

extension LTCtl {
    struct Hello: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Ask the daemon who it is and who it takes you for.",
            discussion: """
                Prints the daemon's version, protocol, pid and socket, the identity it sees for you (from the kernel, \
                the one that owns your jobs), and the user it runs as, e.g.
                  ltd 0.2.0 (protocol 1), pid 212, at /run/ltd/ltd.sock
                  you are alice (uid 1000); the daemon runs as ltd (uid 997)
                Useful to check which daemon a socket leads to. --json prints the daemon's reply.
                """)

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
                    // A daemon from before `peer` existed reports only its own uid.
                    let you = ProcessIdentity(json: reply["peer"])?.described ?? "unknown to this daemon"
                    let daemon = ProcessIdentity(json: reply)?.described ?? Format.owner(reply["uid"]?.intValue)
                    try out.write("ltd \(version) (protocol \(proto)), pid \(pid), at \(try connection.endpoint())\n"
                                  + "you are \(you); the daemon runs as \(daemon)\n")
                }
                try out.flush()
                return .success
            }
        }
    }
}
