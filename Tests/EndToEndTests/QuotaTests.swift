import Foundation
import LTProtocol
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Quotas per user with real users (as OwnerNamesTests): unfinished jobs (`--max-running-per-user`) and bytes of logs
/// and specs (`--max-bytes-per-user`) bite one user with a message naming the quota, the numbers and how to free it,
/// and leave the others alone. Needs root, setpriv and socat.
@Suite("quotas per user", .serialized)
struct QuotaTests {
    typealias Users = OwnerNamesTests

    static func request(_ daemon: DaemonProcess, as user: Users.User, _ line: String) throws -> JSONValue {
        let lineWithID = "{\"id\":1," + line.dropFirst()
        return try Users.requests(daemon, as: user, [lineWithID])[1] ?? .null
    }

    static func start(_ daemon: DaemonProcess, as user: Users.User, _ job: String, _ spec: String) throws -> JSONValue {
        try request(daemon, as: user, "{\"op\":\"start\",\"job\":\"\(job)\",\"spec\":\(spec)}")
    }

    /// The job's status once it has ended.
    static func ended(_ daemon: DaemonProcess, as user: Users.User, _ job: String) throws -> JSONValue {
        var status = JSONValue.null
        try waitUntil("\(user.name)'s \(job) to end", timeout: .seconds(60)) {
            status = try request(daemon, as: user, "{\"op\":\"status\",\"job\":\"\(job)\"}")["status"] ?? .null
            let state = status["state"]?.stringValue
            return state != nil && state != "running" && state != "paused"
        }
        return status
    }

    @Test("--max-running-per-user: alice's third unfinished job is refused, naming the quota; bob's are not; a cancel frees one")
    func runningJobs() throws {
        guard Users.available() else { return }
        let (alice, bob, _) = try Users.users()
        let (daemon, _) = try Users.sharedDaemon("running", arguments: ["--max-running-per-user", "2"])
        defer { daemon.cleanUp() }
        let paused = JobSpecs.noisyLine(paused: true)
        for name in ["p1", "p2"] {
            #expect(try Self.start(daemon, as: alice, name, paused)["type"]?.stringValue == "started")
        }
        let refused = try Self.start(daemon, as: alice, "p3", paused)
        #expect(refused["code"]?.stringValue == "too_many_jobs", "\(refused)")
        let message = refused["message"]?.stringValue ?? ""
        #expect(message.contains("you have 2 jobs running (or paused), the most this daemon allows one user (ltd --max-running-per-user 2)"), "\(message)")
        #expect(message.contains("wait for one to finish or cancel one: ltctl cancel NAME"), "\(message)")
        for name in ["p1", "p2"] {
            #expect(try Self.start(daemon, as: bob, name, paused)["type"]?.stringValue == "started", "bob is not counted with alice")
        }
        #expect(try Self.request(daemon, as: alice, "{\"op\":\"cancel\",\"job\":\"p1\"}")["type"]?.stringValue == "ok")
        #expect(try Self.ended(daemon, as: alice, "p1")["state"]?.stringValue == "cancelled")
        #expect(try Self.start(daemon, as: alice, "p3", paused)["type"]?.stringValue == "started", "a cancelled job frees its place")
        #expect(try daemon.stop() == 0)
    }

    @Test("--max-bytes-per-user: a job that cannot fit is refused at start, one that passes it fails naming it; bob runs on")
    func bytesPerUser() throws {
        guard Users.available() else { return }
        let (alice, bob, _) = try Users.users()
        let (daemon, _) = try Users.sharedDaemon("userbytes", arguments: ["--max-bytes-per-user", "65536"])
        defer { daemon.cleanUp() }
        // 600 steps need at least 600 × 200 bytes: more than the whole quota.
        let refused = try Self.start(daemon, as: alice, "huge", JobSpecs.noisyLine(rows: 12, epochs: 50, batch: 1))
        #expect(refused["code"]?.stringValue == "disk_limit", "\(refused)")
        let message = refused["message"]?.stringValue ?? ""
        #expect(message.contains("your jobs' logs and specs take 0 bytes and this job needs at least 120096 more"), "\(message)")
        #expect(message.contains("quota of 65536 bytes per user (ltd --max-bytes-per-user)"), "\(message)")
        #expect(message.contains("ltctl delete NAME"), "\(message)")

        // 300 steps need at least 60,096 bytes, which fit; they write about twice that, which does not.
        #expect(try Self.start(daemon, as: alice, "big", JobSpecs.noisyLine(rows: 12, epochs: 25, batch: 1))["type"]?.stringValue == "started")
        let big = try Self.ended(daemon, as: alice, "big")
        #expect(big["state"]?.stringValue == "failed", "\(big)")
        #expect(big["message"]?.stringValue?.contains("quota of 65536 bytes of logs and specs per user (ltd --max-bytes-per-user") == true, "\(big)")

        #expect(try Self.start(daemon, as: bob, "small", JobSpecs.noisyLine())["type"]?.stringValue == "started")
        #expect(try Self.ended(daemon, as: bob, "small")["state"]?.stringValue == "finished", "bob is not counted with alice")

        #expect(try Self.request(daemon, as: alice, "{\"op\":\"delete\",\"job\":\"big\"}")["type"]?.stringValue == "ok")
        #expect(try Self.start(daemon, as: alice, "small", JobSpecs.noisyLine())["type"]?.stringValue == "started", "a delete gives the bytes back")
        #expect(try Self.ended(daemon, as: alice, "small")["state"]?.stringValue == "finished")
        #expect(try daemon.stop() == 0)
    }
}
