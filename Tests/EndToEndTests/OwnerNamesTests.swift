import Foundation
import LTProtocol
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Names per owner and the teacher's role, with real users: alice's `job1` and bob's `job1` coexist, bob may watch
/// alice's job as `ltd-test-alice/job1` but not control it, a member of the admin group may, and every control
/// action is in the daemon's log. Needs root (to create the users and act as them) and setpriv and socat.
@Suite("names per owner and the admin group", .serialized)
struct OwnerNamesTests {
    static let alice = "ltd-test-alice"
    static let bob = "ltd-test-bob"
    static let teacher = "ltd-test-teacher"
    static let adminGroup = "ltd-test-admin"

    static func available() -> Bool {
        getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv")
            && FileManager.default.isExecutableFile(atPath: "/usr/bin/socat")
            && FileManager.default.isExecutableFile(atPath: "/usr/sbin/useradd")
    }

    /// A user of the test (created once: the test machine is throwaway), with their uid and primary gid.
    struct User {
        let name: String
        let uid: uid_t
        let gid: gid_t
        /// Supplementary groups the user's processes run with.
        var groups: [gid_t] = []
    }

    static func ensureGroup(_ name: String) throws -> gid_t {
        if let entry = getgrnam(name) { return entry.pointee.gr_gid }
        let made = try Command.run(["/usr/sbin/groupadd", "--system", name])
        guard made.status == 0, let entry = getgrnam(name) else { throw HarnessFailure("groupadd \(name): \(made.stderr)") }
        return entry.pointee.gr_gid
    }

    static func ensureUser(_ name: String) throws -> User {
        if getpwnam(name) == nil {
            let made = try Command.run(["/usr/sbin/useradd", "--system", "--no-create-home", "--user-group", "--shell", "/bin/sh", name])
            guard made.status == 0 else { throw HarnessFailure("useradd \(name): \(made.stderr)") }
        }
        guard let entry = getpwnam(name) else { throw HarnessFailure("no user \(name) after useradd") }
        return User(name: name, uid: entry.pointee.pw_uid, gid: entry.pointee.pw_gid)
    }

    /// The three users; the teacher's processes carry the admin group (as after `usermod -aG` and a new login).
    static func users() throws -> (alice: User, bob: User, teacher: User) {
        let admins = try ensureGroup(adminGroup)
        var teacher = try ensureUser(Self.teacher)
        teacher.groups = [admins]
        return (try ensureUser(alice), try ensureUser(bob), teacher)
    }

    /// `command` run as `user`, with exactly the user's uid, gid and groups.
    static func asUser(_ user: User, _ command: [String], stdin: Data? = nil) throws -> CommandResult {
        let groups = user.groups.isEmpty ? "--clear-groups" : "--groups=" + user.groups.map(String.init).joined(separator: ",")
        return try Command.run(["/usr/bin/setpriv", "--reuid=\(user.uid)", "--regid=\(user.gid)", groups] + command,
                               environment: ["NO_COLOR": "1", "PATH": "/usr/bin:/bin"], stdin: stdin)
    }

    /// Sends request lines on one connection as `user`; returns the replies by id.
    static func requests(_ daemon: DaemonProcess, as user: User, _ lines: [String]) throws -> [Int: JSONValue] {
        let input = Data((lines.joined(separator: "\n") + "\n").utf8)
        let result = try asUser(user, ["/usr/bin/socat", "-t", "2", "-", "UNIX-CONNECT:" + daemon.socketPath], stdin: input)
        var replies: [Int: JSONValue] = [:]
        for line in NDJSON.split([UInt8](result.stdoutBytes)) {
            let reply = try JSONParser.parse(line.dropLast())
            if let id = reply["id"]?.intValue { replies[id] = reply }
        }
        return replies
    }

    /// A daemon every local user may reach (as the system service's group allows), with the test's admin group, and
    /// a copy of ltctl they may run.
    static func sharedDaemon(_ tag: String, directory: String? = nil, arguments: [String] = []) throws -> (DaemonProcess, ltctl: String) {
        let directory = try directory ?? Paths.temporaryDirectory(tag)
        chmod(directory, 0o755)
        let daemon = try DaemonProcess.launch(directory: directory, arguments: ["--admin-group", adminGroup] + arguments)
        chmod(daemon.socketPath, 0o666)
        let copy = directory + "/ltctl"
        try FileManager.default.copyItem(atPath: Paths.ltctl, toPath: copy)
        return (daemon, copy)
    }

    static func start(_ job: String, id: Int) -> String {
        "{\"op\":\"start\",\"id\":\(id),\"job\":\"\(job)\",\"spec\":\(JobSpecs.noisyLine(paused: true))}"
    }

    @Test("alice's job1 and bob's job1 coexist; others name it OWNER/NAME; bob is refused, the admin group is not")
    func namesAndRoles() throws {
        guard Self.available() else { return }
        let (alice, bob, teacher) = try Self.users()
        let (daemon, _) = try Self.sharedDaemon("owners")
        defer { daemon.cleanUp() }

        let a = try Self.requests(daemon, as: alice, [Self.start("job1", id: 1), Self.start("job1", id: 2),
                                                      "{\"op\":\"start\",\"id\":3,\"job\":\"\(bob.name)/x\",\"spec\":\(JobSpecs.noisyLine(paused: true))}"])
        #expect(a[1]?["type"]?.stringValue == "started", "\(a)")
        #expect(a[1]?["status"]?["full_name"]?.stringValue == "\(alice.name)/job1")
        #expect(a[2]?["code"]?.stringValue == "job_exists", "one name per owner")
        #expect(a[3]?["code"]?.stringValue == "invalid_job_name", "a new job is always the caller's")

        let b = try Self.requests(daemon, as: bob, [
            Self.start("job1", id: 1),
            "{\"op\":\"list\",\"id\":2}",
            "{\"op\":\"list\",\"id\":3,\"all\":true}",
            "{\"op\":\"status\",\"id\":4,\"job\":\"job1\"}",
            "{\"op\":\"status\",\"id\":5,\"job\":\"\(alice.name)/job1\"}",
            "{\"op\":\"status\",\"id\":6,\"job\":\"\(alice.uid)/job1\"}",
            "{\"op\":\"pause\",\"id\":7,\"job\":\"\(alice.name)/job1\"}",
            "{\"op\":\"step\",\"id\":8,\"job\":\"\(alice.name)/job1\"}",
            "{\"op\":\"cancel\",\"id\":9,\"job\":\"\(alice.name)/job1\"}",
            "{\"op\":\"delete\",\"id\":10,\"job\":\"\(alice.name)/job1\"}",
            "{\"op\":\"step\",\"id\":11,\"job\":\"job1\",\"count\":2}",
            "{\"op\":\"status\",\"id\":12,\"job\":\"\(alice.name)/nope\"}",
            "{\"op\":\"status\",\"id\":13,\"job\":\"nobody-here/job1\"}",
        ])
        #expect(b[1]?["type"]?.stringValue == "started", "bob's job1 beside alice's: \(b)")
        #expect(b[2]?["jobs"]?.arrayValue?.compactMap { $0["full_name"]?.stringValue } == ["\(bob.name)/job1"], "list: one's own")
        #expect(Set(b[3]?["jobs"]?.arrayValue?.compactMap { $0["full_name"]?.stringValue } ?? [])
                == ["\(alice.name)/job1", "\(bob.name)/job1"], "list --all: everyone's")
        #expect(b[4]?["status"]?["owner"]?.intValue == Int(bob.uid), "a short name is one's own")
        #expect(b[5]?["status"]?["owner"]?.intValue == Int(alice.uid), "OWNER/NAME is another's")
        #expect(b[6]?["status"]?["owner"]?.intValue == Int(alice.uid), "OWNER may be a uid")
        for id in 7...10 {
            #expect(b[id]?["code"]?.stringValue == "permission_denied", "\(id): \(b[id] ?? .null)")
            #expect(b[id]?["owner"]?.intValue == Int(alice.uid))
            #expect(b[id]?["message"]?.stringValue?.contains(Self.adminGroup) == true, "the refusal says who may")
        }
        #expect(b[11]?["type"]?.stringValue == "ok", "bob steps his own job1")
        #expect(b[12]?["code"]?.stringValue == "unknown_job")
        #expect(b[13]?["code"]?.stringValue == "unknown_job")

        // Alice's job is untouched by bob's attempts: still paused at iteration 0.
        let check = try Self.requests(daemon, as: alice, ["{\"op\":\"status\",\"id\":1,\"job\":\"job1\"}"])
        #expect(check[1]?["status"]?["state"]?.stringValue == "paused")
        #expect(check[1]?["status"]?["iteration"]?.intValue == 0)

        // The teacher (a member of the admin group, not root) controls alice's job.
        let t = try Self.requests(daemon, as: teacher, [
            "{\"op\":\"step\",\"id\":1,\"job\":\"\(alice.name)/job1\",\"count\":3}",
            "{\"op\":\"cancel\",\"id\":2,\"job\":\"\(alice.name)/job1\"}",
        ])
        #expect(t[1]?["type"]?.stringValue == "ok", "\(t)")
        #expect(t[2]?["type"]?.stringValue == "ok", "\(t)")
        try waitUntil("alice's job to end cancelled") {
            let s = try Self.requests(daemon, as: alice, ["{\"op\":\"status\",\"id\":1,\"job\":\"job1\"}"])
            return s[1]?["status"]?["state"]?.stringValue == "cancelled"
        }
        let d = try Self.requests(daemon, as: teacher, ["{\"op\":\"delete\",\"id\":1,\"job\":\"\(alice.uid)/job1\"}"])
        #expect(d[1]?["type"]?.stringValue == "ok", "\(d)")
        // Without the group the same user would be refused: membership is the connecting process's.
        var plain = teacher
        plain.groups = []
        let refused = try Self.requests(daemon, as: plain, ["{\"op\":\"pause\",\"id\":1,\"job\":\"\(bob.name)/job1\"}"])
        #expect(refused[1]?["code"]?.stringValue == "permission_denied")

        // The audit trail: who did what to whose job, and by which right; refusals too.
        let log = daemon.stderr
        let aliceJob = "\(alice.name)/job1"
        for line in ["audit: \(alice.name) (uid \(alice.uid)) start \(aliceJob)",
                     "audit: \(bob.name) (uid \(bob.uid)) step \(bob.name)/job1 by 2",
                     "audit: \(teacher.name) (uid \(teacher.uid)) step \(aliceJob) by 3 (owned by \(alice.name) (uid \(alice.uid)); as admin)",
                     "audit: \(teacher.name) (uid \(teacher.uid)) cancel \(aliceJob) (owned by",
                     "audit: \(teacher.name) (uid \(teacher.uid)) delete \(aliceJob) (owned by",
                     "refused: \(bob.name) (uid \(bob.uid)) may not pause \(aliceJob)",
                     "refused: \(teacher.name) (uid \(teacher.uid)) may not pause \(bob.name)/job1"] {
            #expect(log.contains(line), "the log lacks \"\(line)\":\n\(log)")
        }
    }

    @Test("ltctl takes NAME and OWNER/NAME; list shows one's own jobs, list --all everyone's by full name")
    func ltctlNames() throws {
        guard Self.available() else { return }
        let (alice, bob, _) = try Self.users()
        let (daemon, ltctl) = try Self.sharedDaemon("owners-ctl")
        defer { daemon.cleanUp() }
        func run(_ user: User, _ arguments: [String]) throws -> CommandResult {
            try Self.asUser(user, [ltctl] + arguments + ["--socket", daemon.socketPath])
        }
        #expect(try run(alice, ["start", "job1", "--example", "colab"]).status == 0)
        #expect(try run(bob, ["start", "job1", "--example", "colab", "--paused"]).status == 0)
        #expect(try run(alice, ["tail", "job1", "--json"]).status == 0, "alice's job finishes")

        // Bob tails alice's finished job by its full name: every event, as alice sees them.
        let theirs = try run(bob, ["tail", "\(alice.name)/job1", "--json"])
        #expect(theirs.status == 0, "\(theirs.stderr)")
        #expect(theirs.stdout == (try run(alice, ["tail", "job1", "--json"])).stdout)
        let last = try JSONParser.parse(String(theirs.stdout.split(separator: "\n").last ?? ""))
        #expect(last["type"]?.stringValue == "end" && last["state"]?.stringValue == "finished", "\(theirs.stdout)")
        let status = try run(bob, ["status", "\(alice.name)/job1", "--json"])
        #expect(try JSONParser.parse(status.stdout)["owner"]?.intValue == Int(alice.uid))

        let mine = try run(bob, ["list"])
        #expect(mine.stdout.contains("job1") && !mine.stdout.contains(alice.name) && !mine.stdout.contains("\(bob.name)/"), "\(mine.stdout)")
        let everyone = try run(bob, ["list", "--all"])
        #expect(everyone.stdout.contains("\(alice.name)/job1") && everyone.stdout.contains("\(bob.name)/job1"), "\(everyone.stdout)")
        let json = try JSONParser.parse(try run(bob, ["list", "--all", "--json"]).stdout)
        #expect(json.arrayValue?.count == 2)

        let denied = try run(bob, ["cancel", "\(alice.name)/job1"])
        #expect(denied.status == 1)
        #expect(denied.stderr.contains("belongs to \(alice.name)"), "\(denied.stderr)")
        let badStart = try run(bob, ["start", "\(alice.name)/x", "--example", "colab"])
        #expect(badStart.status == 64)
        #expect(badStart.stderr.contains("short name"), "\(badStart.stderr)")
        #expect(try run(bob, ["tail", "a/b/c"]).status == 64)
    }

    /// The fixture's old-layout state directory (`DIR/jobs/NAME`, as every ltd before names per owner wrote it),
    /// with `seeded` owned by alice and `drawn` by bob, plus a job whose meta.json names no owner.
    static func oldLayout(alice: User, bob: User) throws -> String {
        let directory = try StoredJobTests.oldStateDirectory(owners: ["seeded": alice.uid, "drawn": bob.uid])
        let files = FileManager.default
        let jobs = directory + "/state/jobs"
        try files.copyItem(atPath: jobs + "/seeded", toPath: jobs + "/orphan")
        try Data("{\"job\":\"orphan\"}".utf8).write(to: URL(fileURLWithPath: jobs + "/orphan/meta.json"))
        return directory
    }

    @Test("an old state directory's jobs move to their owners, keep their files, and old clients' bare names still work")
    func migratesTheFlatLayout() throws {
        guard Self.available() else { return }
        let (alice, bob, _) = try Self.users()
        let directory = try Self.oldLayout(alice: alice, bob: bob)
        let oldLog = try Data(contentsOf: URL(fileURLWithPath: directory + "/state/jobs/seeded/events.ndjson"))
        let (daemon, _) = try Self.sharedDaemon("old-layout", directory: directory)
        defer { daemon.cleanUp() }

        // Restore (and so the move) runs after ltd is ready; `list` waits until it is over.
        _ = try Self.requests(daemon, as: alice, ["{\"op\":\"list\",\"id\":0}"])
        // Moved, files and all; the unreadable one stays where it was, reported.
        let files = FileManager.default
        #expect(files.fileExists(atPath: daemon.jobDirectory("seeded", owner: alice.uid) + "/spec.json"))
        #expect(files.fileExists(atPath: daemon.jobDirectory("drawn", owner: bob.uid) + "/checkpoint.json"))
        #expect(!files.fileExists(atPath: daemon.stateDirectory + "/jobs/seeded"))
        #expect(try Data(contentsOf: URL(fileURLWithPath: daemon.jobDirectory("seeded", owner: alice.uid) + "/events.ndjson")) == oldLog)
        #expect(files.fileExists(atPath: daemon.stateDirectory + "/jobs/orphan/meta.json"))
        #expect(daemon.stderr.contains("job orphan in \(daemon.stateDirectory)/jobs: its meta.json names no owner"), "\(daemon.stderr)")
        #expect(daemon.stderr.contains("moved 2 job(s)"))

        // An old client sends bare names: its owner finds the job as before, and drives it to the end.
        let a = try Self.requests(daemon, as: alice, [
            "{\"op\":\"status\",\"id\":1,\"job\":\"seeded\"}",
            "{\"op\":\"resume\",\"id\":2,\"job\":\"seeded\"}",
            "{\"op\":\"status\",\"id\":3,\"job\":\"drawn\"}",
        ])
        #expect(a[1]?["status"]?["state"]?.stringValue == "paused", "\(a)")
        #expect(a[1]?["status"]?["iteration"]?.intValue == 5)
        #expect(a[1]?["status"]?["full_name"]?.stringValue == "\(alice.name)/seeded")
        #expect(a[2]?["state"]?.stringValue == "running")
        #expect(a[3]?["code"]?.stringValue == "unknown_job", "bob's job is not alice's drawn")
        try waitUntil("seeded to finish") {
            let s = try Self.requests(daemon, as: alice, ["{\"op\":\"status\",\"id\":1,\"job\":\"seeded\"}"])
            return s[1]?["status"]?["state"]?.stringValue == "finished"
        }
        let b = try Self.requests(daemon, as: bob, ["{\"op\":\"status\",\"id\":1,\"job\":\"drawn\"}",
                                                    "{\"op\":\"status\",\"id\":2,\"job\":\"\(alice.name)/seeded\"}"])
        #expect(b[1]?["status"]?["owner"]?.intValue == Int(bob.uid))
        #expect(b[2]?["status"]?["iteration"]?.intValue == 9)

        // A restart finds them in the new layout, and migrates nothing more.
        #expect(try daemon.stop() == 0)
        try daemon.start(arguments: ["--admin-group", Self.adminGroup])
        chmod(daemon.socketPath, 0o666)
        let again = try Self.requests(daemon, as: bob, ["{\"op\":\"list\",\"id\":1,\"all\":true}"])
        #expect(again[1]?["jobs"]?.arrayValue?.count == 2)
        #expect(daemon.stderr.components(separatedBy: "moved 2 job(s)").count == 2)
    }
}
