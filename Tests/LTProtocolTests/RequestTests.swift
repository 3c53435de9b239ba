import Testing
@testable import LTProtocol
import LTEngine

func decode(_ text: String) -> Result<RequestLine, ProtocolError> {
    RequestLine.decode(Array(text.utf8))
}

/// The error of a line that must fail, checking its error line parses and carries the code.
func expectError(_ text: String, _ code: ErrorCode, field: String? = nil,
                 sourceLocation: SourceLocation = #_sourceLocation) throws -> ProtocolError? {
    switch decode(text) {
    case .success(let r):
        Issue.record("decoded \(r.request) from \(text)", sourceLocation: sourceLocation)
        return nil
    case .failure(let e):
        #expect(e.code == code, "\(text): \(e)", sourceLocation: sourceLocation)
        #expect(e.field == field, "\(text): \(e)", sourceLocation: sourceLocation)
        #expect(!e.message.isEmpty, sourceLocation: sourceLocation)
        #expect(e.line.last == 0x0A && e.line.dropLast().allSatisfy { $0 != 0x0A }, sourceLocation: sourceLocation)
        let back = try ProtocolError(json: try JSONParser.parse(e.line))
        #expect(back == e, sourceLocation: sourceLocation)
        return e
    }
}

@Suite struct RequestDecodingTests {
    @Test func everyOpDecodes() throws {
        let spec = try JobSpec(json: try JSONParser.parse(classicSpec()))
        let cases: [(String, Request)] = [
            ("{\"op\":\"hello\"}", .hello),
            ("{\"op\":\"start\",\"job\":\"job1\",\"spec\":\(classicSpec())}", .start(job: "job1", spec: spec)),
            ("{\"op\":\"list\"}", .list(all: false)),
            ("{\"op\":\"list\",\"all\":true}", .list(all: true)),
            ("{\"op\":\"status\",\"job\":\"alice/job1\"}", .status(job: "alice/job1")),
            ("{\"op\":\"cancel\",\"job\":\"1000/j\"}", .cancel(job: "1000/j")),
            ("{\"op\":\"status\",\"job\":\"a.b-c_d\"}", .status(job: "a.b-c_d")),
            ("{\"op\":\"subscribe\",\"job\":\"j\"}", .subscribe(job: "j", from: 1, every: 1, types: nil)),
            ("{\"op\":\"subscribe\",\"job\":\"j\",\"from\":17,\"every\":100,\"types\":[\"step\",\"end\",\"step\"]}",
             .subscribe(job: "j", from: 17, every: 100, types: [.step, .end])),
            ("{\"op\":\"subscribe\",\"job\":\"j\",\"types\":[]}", .subscribe(job: "j", from: 1, every: 1, types: [])),
            ("{\"op\":\"unsubscribe\"}", .unsubscribe),
            ("{\"op\":\"pause\",\"job\":\"j\"}", .pause(job: "j")),
            ("{\"op\":\"resume\",\"job\":\"j\"}", .resume(job: "j")),
            ("{\"op\":\"step\",\"job\":\"j\"}", .step(job: "j", count: 1)),
            ("{\"op\":\"step\",\"job\":\"j\",\"count\":1000000000}", .step(job: "j", count: 1_000_000_000)),
            ("{\"op\":\"cancel\",\"job\":\"j\"}", .cancel(job: "j")),
            ("{\"op\":\"delete\",\"job\":\"j\"}", .delete(job: "j")),
            ("{\"op\":\"explain\",\"job\":\"j\",\"iteration\":0}", .explain(job: "j", iteration: 0)),
            ("{\"op\":\"explain\",\"job\":\"j\",\"iteration\":12}", .explain(job: "j", iteration: 12)),
            ("{\"op\":\"create\",\"job\":\"nb1\",\"spec\":\(classicSpec())}", .create(job: "nb1", spec: spec, run: ExternalRun())),
            ("{\"op\":\"publish\",\"job\":\"nb1\",\"event\":{\"type\":\"end\",\"state\":\"finished\"}}",
             .publish(job: "nb1", event: .object([("type", .string("end")), ("state", .string("finished"))]))),
            ("{\"op\":\"prune\"}", .prune(olderThan: 0, all: false, dryRun: false)),
            ("{\"op\":\"prune\",\"older_than_seconds\":604800,\"all\":true,\"dry_run\":true}",
             .prune(olderThan: 604_800, all: true, dryRun: true)),
            ("{\"op\":\"stats\"}", .stats),
        ]
        for (text, expected) in cases {
            let line = try decode(text).get()
            #expect(line.request == expected, "\(text)")
            #expect(line.id == nil)
            // And back through the client-side encoder.
            #expect(try RequestLine.decode(line.line).get() == line)
        }
        #expect(Set(cases.map(\.1.op)) == Set(Request.ops))
    }

    @Test func pruneRefusesBadFields() throws {
        _ = try expectError("{\"op\":\"prune\",\"older_than_seconds\":-1}", .badRequest, field: "older_than_seconds")
        _ = try expectError("{\"op\":\"prune\",\"older_than_seconds\":\"7d\"}", .badRequest, field: "older_than_seconds")
        _ = try expectError("{\"op\":\"prune\",\"all\":1}", .badRequest, field: "all")
        _ = try expectError("{\"op\":\"prune\",\"dry_run\":\"yes\"}", .badRequest, field: "dry_run")
        _ = try expectError("{\"op\":\"prune\",\"job\":\"j\"}", .badRequest, field: "job")
    }

    @Test func idIsEchoedWhateverItIs() throws {
        for id in ["1", "\"abc\"", "null", "[1,{\"a\":2}]", "18446744073709551616", "1.5"] {
            let line = try decode("{\"id\":\(id),\"op\":\"list\"}").get()
            #expect(line.id == (try JSONParser.parse(id)))
            let e = try expectError("{\"id\":\(id),\"op\":\"lisst\"}", .unknownOp)
            #expect(e?.id == (try JSONParser.parse(id)))
            let text = String(decoding: e?.line ?? [], as: UTF8.self)
            #expect(text.hasPrefix("{\"type\":\"error\",\"id\":\(id),\"code\":\"unknown_op\""))
        }
    }

    @Test func trailingNewlineAndCarriageReturnAreFine() throws {
        #expect(try decode("{\"op\":\"hello\"}\n").get().request == .hello)
        #expect(try decode("{\"op\":\"hello\"}\r\n").get().request == .hello)
    }

    @Test func badJSON() throws {
        for text in ["", "{", "{\"op\":\"hello\"", "{\"op\":hello}", "{\"op\":\"hello\",\"op\":\"list\"}",
                     String(repeating: "[", count: 10_000)] {
            _ = try expectError(text, .badJSON)
        }
        let invalidUTF8: [UInt8] = Array("{\"op\":\"hello\",\"id\":\"".utf8) + [0xC3, 0x28] + Array("\"}".utf8)
        guard case .failure(let e) = RequestLine.decode(invalidUTF8) else { Issue.record("accepted invalid UTF-8"); return }
        #expect(e.code == .badJSON)
        #expect(e.id == nil)
        _ = try JSONParser.parse(e.line)
    }

    /// Valid JSON that is not an object is a malformed request, not malformed JSON.
    @Test func jsonThatIsNotAnObject() throws {
        for text in ["[]", "[1,2]", "3", "\"x\"", "null", "true"] {
            let e = try expectError(text, .badRequest)
            #expect(e?.message.hasPrefix("a request is a JSON object") == true)
        }
    }

    @Test func unknownOp() throws {
        _ = try expectError("{}", .unknownOp)
        _ = try expectError("{\"id\":1}", .unknownOp)
        _ = try expectError("{\"op\":\"strat\"}", .unknownOp)
        _ = try expectError("{\"op\":1}", .unknownOp)
        _ = try expectError("{\"op\":null}", .unknownOp)
        _ = try expectError("{\"op\":\"HELLO\"}", .unknownOp)
        let e = try expectError("{\"op\":\"strat\"}", .unknownOp)
        #expect(e?.message.contains("start") == true)
    }

    @Test func unknownFields() throws {
        _ = try expectError("{\"op\":\"hello\",\"verbose\":true}", .badRequest, field: "verbose")
        _ = try expectError("{\"op\":\"status\",\"job\":\"j\",\"jbo\":\"j\"}", .badRequest, field: "jbo")
        _ = try expectError("{\"op\":\"pause\",\"job\":\"j\",\"count\":1}", .badRequest, field: "count")
        _ = try expectError("{\"op\":\"subscribe\",\"job\":\"j\",\"since\":5}", .badRequest, field: "since")
        _ = try expectError("{\"op\":\"list\",\"job\":\"j\"}", .badRequest, field: "job")
        _ = try expectError("{\"op\":\"list\",\"all\":\"yes\"}", .badRequest, field: "all")
    }

    @Test func jobField() throws {
        for op in ["start", "status", "subscribe", "pause", "resume", "step", "cancel", "delete", "explain"] {
            let spec = op == "start" ? ",\"spec\":\(classicSpec())" : op == "explain" ? ",\"iteration\":1" : ""
            _ = try expectError("{\"op\":\"\(op)\"\(spec)}", .badRequest, field: "job")
            _ = try expectError("{\"op\":\"\(op)\",\"job\":7\(spec)}", .badRequest, field: "job")
            _ = try expectError("{\"op\":\"\(op)\",\"job\":null\(spec)}", .badRequest, field: "job")
            for bad in ["", "../etc", ".hidden", "-x", "a/", "/b", "a/b/c", ".x/b", "-x/b", "a/../b", "a b", "é",
                        String(repeating: "a", count: 65), "\(String(repeating: "a", count: 33))/b", "a\\u0000"] {
                let e = try expectError("{\"op\":\"\(op)\",\"job\":\"\(bad)\"\(spec)}", .invalidJobName, field: "job")
                #expect(e?.message.contains(JobName.rule) == true, "\(bad): \(e?.message ?? "")")
            }
            let other = decode("{\"op\":\"\(op)\",\"job\":\"alice/job1\"\(spec)}")
            if op == "start" {
                // A new job is always the caller's: start takes a short name.
                guard case .failure(let e) = other else { Issue.record("start accepted alice/job1"); continue }
                #expect(e.code == .invalidJobName && e.field == "job" && e.message.contains("short name"), "\(e)")
            } else {
                #expect(try other.get().request.job == "alice/job1")
            }
        }
        #expect(JobReference("alice/job1") == JobReference(owner: "alice", name: "job1"))
        #expect(JobReference("1000/job1")?.ownerUID == 1000)
        #expect(JobReference("job1") == JobReference(owner: nil, name: "job1"))
        #expect(JobReference("alice/job1")?.description == "alice/job1")
        #expect(try decode("{\"op\":\"status\",\"job\":\"\(String(repeating: "a", count: 64))\"}").get().request.job?.count == 64)
    }

    @Test func startSpec() throws {
        _ = try expectError("{\"op\":\"start\",\"job\":\"j\"}", .badRequest, field: "spec")
        _ = try expectError("{\"op\":\"start\",\"job\":\"j\",\"spec\":[]}", .badRequest, field: "spec")
        _ = try expectError("{\"op\":\"start\",\"job\":\"j\",\"spec\":\"x\"}", .badRequest, field: "spec")
        let e = try expectError("{\"op\":\"start\",\"job\":\"j\",\"spec\":\(classicSpec(replacing: "optimizer", with: "{\"name\":\"rmsprop\",\"rho\":\"high\"}"))}",
                                .invalidSpec, field: "optimizer.rho")
        #expect(e?.message.hasPrefix("optimizer.rho") == true)
        _ = try expectError("{\"op\":\"start\",\"job\":\"j\",\"spec\":\(classicSpec(replacing: "data", with: "{\"x\":[1,2,3],\"y\":[1,2,1e999]}"))}",
                            .invalidSpec, field: "data.y[2]")
    }

    @Test func integersInRange() throws {
        let bad = ["0", "-1", "1.5", "\"3\"", "true", "[]", "1e400", "-1e400", "99999999999999999999999999999", "9223372036854775808"]
        for value in bad {
            _ = try expectError("{\"op\":\"step\",\"job\":\"j\",\"count\":\(value)}", .badRequest, field: "count")
            _ = try expectError("{\"op\":\"subscribe\",\"job\":\"j\",\"from\":\(value)}", .badRequest, field: "from")
            _ = try expectError("{\"op\":\"subscribe\",\"job\":\"j\",\"every\":\(value)}", .badRequest, field: "every")
        }
        _ = try expectError("{\"op\":\"step\",\"job\":\"j\",\"count\":1000000001}", .badRequest, field: "count")
        // explain's iteration is required, and may be 0 (the initial weights).
        for value in ["-1", "1.5", "\"3\"", "true", "null", "1e400"] {
            _ = try expectError("{\"op\":\"explain\",\"job\":\"j\",\"iteration\":\(value)}", .badRequest, field: "iteration")
        }
        _ = try expectError("{\"op\":\"explain\",\"job\":\"j\"}", .badRequest, field: "iteration")
        #expect(try decode("{\"op\":\"subscribe\",\"job\":\"j\",\"from\":9223372036854775807}").get().request
                == .subscribe(job: "j", from: Int.max, every: 1, types: nil))
        #expect(try decode("{\"op\":\"step\",\"job\":\"j\",\"count\":null}").get().request == .step(job: "j", count: 1))
    }

    @Test func eventTypes() throws {
        _ = try expectError("{\"op\":\"subscribe\",\"job\":\"j\",\"types\":\"step\"}", .badRequest, field: "types")
        _ = try expectError("{\"op\":\"subscribe\",\"job\":\"j\",\"types\":[\"step\",\"steps\"]}", .badRequest, field: "types[1]")
        _ = try expectError("{\"op\":\"subscribe\",\"job\":\"j\",\"types\":[1]}", .badRequest, field: "types[0]")
    }

    @Test func errorLinesMatchTheProtocol() throws {
        let e = ProtocolError(.permissionDenied, "job1 belongs to uid 1000; only its owner or root may cancel it", owner: 1000, id: .number("8"))
        #expect(String(decoding: e.line, as: UTF8.self)
                == "{\"type\":\"error\",\"id\":8,\"code\":\"permission_denied\",\"owner\":1000,\"message\":\"job1 belongs to uid 1000; only its owner or root may cancel it\"}\n")
        let s = ProtocolError(.invalidSpec, "x \"quoted\"\n", field: "optimizer.rho")
        #expect(String(decoding: s.line, as: UTF8.self)
                == "{\"type\":\"error\",\"code\":\"invalid_spec\",\"field\":\"optimizer.rho\",\"message\":\"x \\\"quoted\\\"\\n\"}\n")
    }
}

@Suite struct ProtocolDocExampleTests {
    /// The invalid_spec example in docs/PROTOCOL.md is this line, byte for byte.
    @Test func invalidSpecExample() throws {
        let spec = classicSpec(replacing: "optimizer", with: "{\"name\":\"rmsprop\",\"rho\":1.5}")
        guard case .failure(let e) = decode("{\"op\":\"start\",\"id\":2,\"job\":\"job1\",\"spec\":\(spec)}") else {
            Issue.record("accepted rho 1.5"); return
        }
        #expect(String(decoding: e.line, as: UTF8.self)
                == "{\"type\":\"error\",\"id\":2,\"code\":\"invalid_spec\",\"field\":\"optimizer.rho\",\"message\":\"optimizer.rho: 1.5 is not allowed; a number in [0, 1)\"}\n")
    }
}

/// Where clients look for the daemon: their own, else the system service's socket when only that one exists.
@Suite struct DefaultPathTests {
    @Test func clientsReachTheSystemServiceWhenTheyHaveNoDaemon() {
        let env = ["XDG_RUNTIME_DIR": "/run/user/1000"]
        let own = "/run/user/1000/ltd/ltd.sock"
        #expect(DefaultPaths.socket(environment: env, uid: 1000) == own)
        #expect(DefaultPaths.clientSocket(environment: env, uid: 1000) { $0 == DefaultPaths.systemSocket } == DefaultPaths.systemSocket)
        #expect(DefaultPaths.clientSocket(environment: env, uid: 1000) { _ in true } == own)
        #expect(DefaultPaths.clientSocket(environment: env, uid: 1000) { _ in false } == own)
        var explicit = env
        explicit["LTD_SOCKET"] = "/srv/x.sock"
        #expect(DefaultPaths.clientSocket(environment: explicit, uid: 1000) { _ in false } == "/srv/x.sock")
        #expect(DefaultPaths.clientSocket(environment: [:], uid: 0) { _ in false } == DefaultPaths.systemSocket)
    }
}
