import Foundation
import LTProtocol
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Watchers on another machine, for real: Debian's sshd on 127.0.0.1 with throwaway keys, a test user it logs in as,
/// and `ltctl --host ssh://user@127.0.0.1:PORT/socket`, which runs `ltctl dial-stdio` on the far side.
@Suite("ltctl over ssh", .serialized)
struct CtlSSHTests {
    static let user = "ltd-ssh-test"

    /// sshd on a free loopback port, a key pair for `user`, and the environment that points ltctl at them.
    final class SSHServer {
        let directory: String
        let port: Int
        let daemon: ChildProcess
        let environment: [String: String]

        init() throws {
            directory = try Paths.temporaryDirectory("sshd")
            chmod(directory, 0o755)
            for key in ["host_key", "client_key"] {
                let made = try Command.run(["/usr/bin/ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", directory + "/" + key])
                guard made.status == 0 else { throw HarnessFailure("ssh-keygen: \(made.stderr)") }
            }
            try FileManager.default.copyItem(atPath: directory + "/client_key.pub", toPath: directory + "/authorized_keys")
            chmod(directory + "/authorized_keys", 0o644)
            try? FileManager.default.createDirectory(atPath: "/run/sshd", withIntermediateDirectories: true)
            var started: (Int, ChildProcess)?
            for attempt in 0..<20 where started == nil {
                let port = 20_000 + Int((getpid() + Int32(attempt * 7919)) % 20_000)
                let config = """
                    Port \(port)
                    ListenAddress 127.0.0.1
                    HostKey \(directory)/host_key
                    AuthorizedKeysFile \(directory)/authorized_keys
                    PasswordAuthentication no
                    KbdInteractiveAuthentication no
                    PermitRootLogin prohibit-password
                    StrictModes no
                    UsePAM no
                    PidFile none
                    """
                try config.write(toFile: directory + "/sshd_config", atomically: true, encoding: .utf8)
                let sshd = try ChildProcess(["/usr/sbin/sshd", "-D", "-e", "-f", directory + "/sshd_config"],
                                            stderr: .file(directory + "/sshd.log", append: true))
                if (try? waitUntil("sshd to listen", timeout: .seconds(3), { Self.listens(port) || !sshd.isRunning })) != nil, sshd.isRunning {
                    started = (port, sshd)
                } else {
                    sshd.killAndReap()
                }
            }
            guard let (port, sshd) = started else { throw HarnessFailure("sshd did not start: \(String(decoding: FileManager.default.contents(atPath: directory + "/sshd.log") ?? Data(), as: UTF8.self))") }
            self.port = port
            daemon = sshd
            var environment = ProcessInfo.processInfo.environment
            environment["LTD_SSH"] = "ssh -i \(directory)/client_key -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR"
            environment["LTD_REMOTE_LTCTL"] = Paths.ltctl
            environment["NO_COLOR"] = "1"
            environment["LTD_SOCKET"] = nil
            self.environment = environment
        }

        static func listens(_ port: Int) -> Bool {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(fd) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            return withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
            }
        }

        func host(_ user: String, socket: String) -> String { "ssh://\(user)@127.0.0.1:\(port)\(socket)" }

        deinit {
            daemon.killAndReap()
            Paths.remove(directory)
        }
    }

    /// The test user exists (created once, as the CI machine is throwaway), with a shell sshd can run commands in.
    static func ensureUser() throws -> Int {
        if let entry = getpwnam(user) {
            _ = try Command.run(["/usr/sbin/usermod", "--password", "*", user])
            return Int(entry.pointee.pw_uid)
        }
        // Password '*': no password login, but not a locked account, which sshd would refuse even with a key.
        let made = try Command.run(["/usr/sbin/useradd", "--system", "--no-create-home", "--shell", "/bin/sh", "--password", "*", user])
        guard made.status == 0, let entry = getpwnam(user) else { throw HarnessFailure("useradd \(user): \(made.stderr)") }
        return Int(entry.pointee.pw_uid)
    }

    /// Root to play another user and run sshd; sshd from Debian's openssh-server. In CI both must be there.
    static func available() -> Bool {
        let ready = getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/sbin/sshd")
        if !ready && ProcessInfo.processInfo.environment["CI"] == "true" {
            Issue.record("the ssh tests need root and /usr/sbin/sshd (apt-get install openssh-server); under CI=true they must run")
        }
        return ready
    }

    /// A daemon every local user may reach (as the system service's group would allow), with one paced job of root's.
    static func sharedDaemon() throws -> DaemonProcess {
        let directory = try Paths.temporaryDirectory("sshd-ltd")
        chmod(directory, 0o755)
        let h = try DaemonProcess.launch(directory: directory, arguments: ["--log-level", "warning"])
        chmod(h.socketPath, 0o666)
        return h
    }

    @Test func remoteAndLocalTailsGetTheSameStreamAndTheLoginUserIsTheCaller() throws {
        guard Self.available() else { return }
        let uid = try Self.ensureUser()
        let ssh = try SSHServer()
        let h = try Self.sharedDaemon()
        defer { h.cleanUp() }
        try h.startColab("shared", extra: ["--pace", "100ms"])
        let host = ssh.host(Self.user, socket: h.socketPath)

        // The daemon sees the ssh login user: a job started remotely is that user's.
        let started = try Command.run([Paths.ltctl, "--host", host, "start", "theirs", "--example", "colab", "--json"], environment: ssh.environment)
        #expect(started.status == 0, "\(started.stderr)")
        #expect(try JSONParser.parse(started.stdout)["owner"]?.intValue == uid, "\(started.stdout)")

        // Two remote tails and a local one, while the job runs: root's job, by its full name.
        var tails: [ChildProcess] = []
        for (i, arguments) in [["--host", host], ["--host", host], ["--socket", h.socketPath]].enumerated() {
            tails.append(try ChildProcess([Paths.ltctl] + arguments + ["tail", "root/shared", "--json"], environment: ssh.environment,
                                          stdout: .file(h.directory + "/tail\(i).out", append: false),
                                          stderr: .file(h.directory + "/tail\(i).err", append: false)))
        }
        for tail in tails { #expect(try tail.waitForExit(timeout: .seconds(60)) == 0) }
        let streams = (0..<3).map { FileManager.default.contents(atPath: h.directory + "/tail\($0).out") ?? Data() }
        let raw = try h.rawSubscription("shared")
        #expect(raw.count > 1_000)
        #expect(streams.allSatisfy { $0 == raw })

        // The Python client takes the same address: every event, in order, with the same numbers.
        var python = ssh.environment
        python["PYTHONPATH"] = Paths.repositoryRoot.appendingPathComponent("clients/python").path
        let script = """
            import ltd_client
            for e in ltd_client.Client(host=\"\(host)\").tail("root/shared"):
                print(e["seq"], e["type"], repr(e.get("w_after")))
            """
        let fromPython = try Command.run(["python3", "-c", script], environment: python)
        #expect(fromPython.status == 0, "\(fromPython.stderr)")
        let expected = try String(decoding: raw, as: UTF8.self).split(separator: "\n").map { line -> String in
            let e = try JSONParser.parse(Array(line.utf8))
            let w = e["w_after"]?.doubleValue.map { "\($0)" } ?? "None"
            return "\(e["seq"]?.intValue ?? 0) \(e["type"]?.stringValue ?? "") \(w)"
        }
        #expect(fromPython.stdout.split(separator: "\n").map(String.init) == expected)

        // A remote user who does not own the job may watch it, but not control it.
        try h.startColab("mine", extra: ["--paused"])
        let cancel = try Command.run([Paths.ltctl, "--host", host, "cancel", "root/mine"], environment: ssh.environment)
        #expect(cancel.status == 1)
        #expect(cancel.stderr.contains("only its owner, root or a member of the group ltd-admin may cancel it"), "\(cancel.stderr)")
        #expect(try JSONParser.parse(try h.ltctl(["status", "mine", "--json"]).stdout)["state"]?.stringValue == "paused")
        // LTD_HOST does what --host does.
        var viaEnvironment = ssh.environment
        viaEnvironment["LTD_HOST"] = host
        let list = try Command.run([Paths.ltctl, "list", "--all"], environment: viaEnvironment)
        #expect(list.status == 0 && list.stdout.contains("root/mine"), "\(list.stderr)")
    }

    @Test func aKilledSshLeavesNothingBehind() throws {
        guard Self.available() else { return }
        _ = try Self.ensureUser()
        let ssh = try SSHServer()
        let h = try Self.sharedDaemon()
        defer { h.cleanUp() }
        func descriptors() -> Int { (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(h.pid)/fd").count) ?? -1 }
        func relays() throws -> Int {
            // The ltctl process on the far side (sshd starts it through the user's shell).
            try Command.run(["/usr/bin/pgrep", "-u", Self.user, "-x", "ltctl"]).stdout.split(separator: "\n").count
        }
        let baseline = descriptors()
        try h.startColab("long", extra: ["--pace", "200ms", "--epochs", "20"])
        let tail = try ChildProcess([Paths.ltctl, "--host", ssh.host(Self.user, socket: h.socketPath), "tail", "root/long", "--json"],
                                    environment: ssh.environment, stdout: .file(h.directory + "/tail.out", append: false),
                                    stderr: .file(h.directory + "/tail.err", append: false))
        try waitUntil("the remote tail's first events") { (FileManager.default.contents(atPath: h.directory + "/tail.out")?.count ?? 0) > 0 }
        #expect(try relays() == 1)
        // Kill ssh itself (ltctl's child), as a dropped network or a killed terminal would.
        let children = try Command.run(["/usr/bin/pgrep", "-P", String(tail.pid)]).stdout.split(separator: "\n").compactMap { Int32($0) }
        #expect(children.count == 1)
        for child in children { kill(child, SIGKILL) }
        // ltctl says the connection ended, with a non-zero status.
        #expect(try tail.waitForExit(timeout: .seconds(20)) != 0)
        #expect(String(decoding: FileManager.default.contents(atPath: h.directory + "/tail.err") ?? Data(), as: UTF8.self).contains("ssh://"))
        // The remote relay goes, and with it the daemon's connection (the running job writes, so ltd sees the close).
        try waitUntil("the remote dial-stdio to exit", timeout: .seconds(20)) { try relays() == 0 }
        try waitUntil("ltd to close the connection", timeout: .seconds(20)) { descriptors() <= baseline + 2 }
        #expect(try h.ltctl(["cancel", "long"]).status == 0)
    }
}
