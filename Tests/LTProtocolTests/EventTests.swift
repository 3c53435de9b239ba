import Testing
@testable import LTProtocol
@testable import LTEngine

func makeStep(order: [Int]?, range: Range<Int>, slotNames: [String] = ["velocity"]) -> StepRecord {
    StepRecord(epoch: 1, step: 1, iteration: 1, batch: BatchRows(order: order, range: range),
               wBefore: 0.5, bBefore: 0, gradW: -46.6, gradB: -16.3,
               wAfter: Double(Float(0.6581139)), bAfter: Double(Float(0.1581139)),
               batchLoss: Double(Float(73.885)), batchRmse: Double(Float(8.595638)), loss: Double(Float(73.885)), rmse: Double(Float(8.595638)),
               valLoss: Double(Float(352.335)), valRmse: Double(Float(18.770588)),
               slots: OptimizerSlots(names: slotNames, kernel: (217.156, 2, 3), bias: (26.569, 5, 6)))
}

func dataset(_ n: Int) -> JobSpec {
    JobSpec(data: Dataset(x: (0..<n).map { Double($0) + 0.1 }, y: (0..<n).map { 2 * Double($0) }),
            optimizer: OptimizerSpec(name: .rmsprop, learningRate: 0.05), batchSize: 4)
}

func parse(_ line: [UInt8]) throws -> Event {
    #expect(line.last == 0x0A)
    #expect(line.dropLast().allSatisfy { $0 != 0x0A }, "one line")
    return try Event(line: line)
}

@Suite struct EventEncodingTests {
    let spec = JobSpec(data: Dataset(x: (1...12).map(Double.init), y: [5, 8.8, 9.6, 14.2, 18.8, 19.5, 21.4, 26.8, 28.9, 32, 33.8, 38.2]),
                       initialization: .constant(kernel: 0.5, bias: 0),
                       optimizer: OptimizerSpec(name: .rmsprop, learningRate: 0.05), epochs: 4, batchSize: 4)

    @Test func stepCarriesEveryRequiredField() throws {
        let e = try parse(EventEncoder.step(job: "job1", seq: 3, record: makeStep(order: nil, range: 0..<4), spec: spec))
        #expect(e.type == .step && e.job == "job1" && e.seq == 3)
        for key in ["epoch", "step", "iteration", "batch.size", "w_before", "b_before", "grad_w", "grad_b", "w_after", "b_after",
                    "batch_loss", "batch_rmse", "loss", "rmse", "val_loss", "val_rmse", "slots.kernel.velocity", "slots.bias.velocity"] {
            #expect(e.value(key) != nil, "\(key)")
        }
        #expect(e.ints("batch.indices") == [0, 1, 2, 3])
        #expect(e.doubles("batch.x") == [1, 2, 3, 4])
        #expect(e.doubles("batch.y")?.map { Float($0) } == [5, 8.8, 9.6, 14.2])
        #expect(e.doubles("batch.pred") == [0.5, 1, 1.5, 2])
        #expect(e.float("w_after") == Float(0.6581139))
        #expect(e.string("w_after") == nil)
        // float32 job: the shortest float32 spelling.
        let text = String(decoding: EventEncoder.step(job: "job1", seq: 3, record: makeStep(order: nil, range: 0..<4), spec: spec), as: UTF8.self)
        #expect(text.contains("\"w_after\":0.6581139,"))
        #expect(text.contains("\"y\":[5.0,8.8,9.6,14.2]"))
        #expect(text.hasPrefix("{\"type\":\"step\",\"job\":\"job1\",\"seq\":3,"))
    }

    @Test func slotsUseTheirNames() throws {
        let r = makeStep(order: nil, range: 0..<4, slotNames: ["velocity", "momentum", "average_gradient"])
        let e = try parse(EventEncoder.step(job: "j", seq: 1, record: r, spec: spec))
        #expect(e.double("slots.kernel.momentum") == 2)
        #expect(e.double("slots.bias.average_gradient") == 6)
        let none = try parse(EventEncoder.step(job: "j", seq: 1, record: makeStep(order: nil, range: 0..<4, slotNames: []), spec: spec))
        #expect(none.value("slots.kernel") == .object([]))
    }

    @Test func nonFiniteValuesStayValidJSON() throws {
        var r = makeStep(order: nil, range: 0..<4)
        r.loss = .infinity; r.rmse = .nan; r.wAfter = -.infinity
        let e = try parse(EventEncoder.step(job: "j", seq: 9, record: r, spec: spec))
        #expect(e.string("loss") == "Infinity")
        #expect(e.double("rmse")?.isNaN == true)
        #expect(e.double("w_after") == -.infinity)
    }

    @Test func float64JobsWriteFullPrecision() throws {
        var s = spec
        s.precision = .float64
        var r = makeStep(order: nil, range: 0..<2)
        r.wAfter = 0.1 + 0.2
        let e = try parse(EventEncoder.step(job: "j", seq: 1, record: r, spec: s))
        #expect(e.double("w_after") == 0.1 + 0.2)
        #expect(e.doubles("batch.y") == [5, 8.8])
    }

    @Test func smallShuffledBatchListsRowsInFeedOrder() throws {
        let order = [5, 2, 11, 0, 7, 1, 3, 4, 6, 8, 9, 10]
        let e = try parse(EventEncoder.step(job: "j", seq: 1, record: makeStep(order: order, range: 4..<8), spec: spec))
        #expect(e.ints("batch.indices") == [7, 1, 3, 4])
        #expect(e.doubles("batch.x") == [8, 2, 4, 5])
        #expect(e.int("batch.size") == 4)
    }

    @Test func largeBatchRules() throws {
        // ≤ 64 rows: values. 65 rows: no values, indices.
        let s = dataset(5000)
        let at64 = try parse(EventEncoder.step(job: "j", seq: 1, record: makeStep(order: nil, range: 10..<74), spec: s))
        #expect(at64.doubles("batch.x")?.count == 64 && at64.doubles("batch.pred")?.count == 64)
        #expect(at64.ints("batch.indices") == Array(10..<74))
        let at65 = try parse(EventEncoder.step(job: "j", seq: 1, record: makeStep(order: nil, range: 10..<75), spec: s))
        #expect(at65.value("batch.x") == nil && at65.value("batch.y") == nil && at65.value("batch.pred") == nil)
        #expect(at65.ints("batch.indices") == Array(10..<75))
        // Contiguous: indices up to 1024 rows, a range beyond.
        let at1024 = try parse(EventEncoder.step(job: "j", seq: 1, record: makeStep(order: nil, range: 100..<1124), spec: s))
        #expect(at1024.ints("batch.indices") == Array(100..<1124) && at1024.value("batch.range") == nil)
        let at1025 = try parse(EventEncoder.step(job: "j", seq: 1, record: makeStep(order: nil, range: 100..<1125), spec: s))
        #expect(at1025.ints("batch.range") == [100, 1125] && at1025.value("batch.indices") == nil)
        #expect(at1025.int("batch.size") == 1025)
        // A shuffled order whose batch happens to be consecutive rows is contiguous too.
        var order = Array(0..<5000)
        order.swapAt(0, 4999)
        let consecutive = try parse(EventEncoder.step(job: "j", seq: 1, record: makeStep(order: order, range: 1..<3001), spec: s))
        #expect(consecutive.ints("batch.range") == [1, 3001])
        // A shuffled large batch lists every index, in feed order.
        let shuffled = try parse(EventEncoder.step(job: "j", seq: 1, record: makeStep(order: order, range: 0..<2000), spec: s))
        #expect(shuffled.ints("batch.indices") == Array(order[0..<2000]))
        #expect(shuffled.value("batch.range") == nil)
    }

    @Test func startEvent() throws {
        let record = StartRecord(w: 0.5, b: 0, stepsPerEpoch: 3, totalSteps: 12,
                                 optimum: Optimum(w: 2.9, b: 2.1, mse: 1.2),
                                 origin: InitialWeightsOrigin(initializer: "constant"),
                                 slots: OptimizerSlots(names: ["velocity"]))
        let e = try parse(EventEncoder.start(job: "job1", seq: 1, spec: spec, record: record))
        #expect(e.type == .start && e.seq == 1)
        #expect(e.double("w") == 0.5 && e.double("b") == 0)
        #expect(e.double("optimum.w") == 2.9)
        #expect(e.string("init.initializer") == "constant")
        #expect(e.int("n_train") == 12 && e.int("n_val") == 12 && e.int("steps_per_epoch") == 3 && e.int("total_steps") == 12)
        #expect(e.string("precision") == "float32")
        #expect(e.float("optimizer.rho") == Float(0.9) && e.bool("optimizer.centered") == false)
        #expect(e.value("optimizer.weight_decay") == .null)
        #expect(e.double("slots.kernel.velocity") == 0)
        // The embedded spec decodes back to the job's spec.
        #expect(try JobSpec(json: e.value("spec") ?? .null) == spec)
        let text = String(decoding: EventEncoder.start(job: "job1", seq: 1, spec: spec, record: record), as: UTF8.self)
        #expect(text.contains("\"epsilon\":1e-07"))

        var noOptimum = record
        noOptimum.optimum = nil
        noOptimum.origin = InitialWeightsOrigin(initializer: "keras_default", seed: 7, initializerSeed: 123, limit: 3.0.squareRoot(), unitUniform: 0.25)
        let e2 = try parse(EventEncoder.start(job: "job1", seq: 1, spec: spec, record: noOptimum))
        #expect(e2.value("optimum") == .null)
        #expect(e2.int("init.seed") == 7 && e2.int("init.initializer_seed") == 123 && e2.double("init.unit_uniform") == 0.25)
    }

    @Test func stateEpochEnd() throws {
        let s = try parse(EventEncoder.state(job: "j", seq: 2, state: .running, message: nil))
        #expect(s.type == .state && s.state == .running && s.value("message") == nil)
        let d = try parse(EventEncoder.state(job: "j", seq: 9, state: .diverged, message: "loss is \"NaN\"\nat step 4"))
        #expect(d.state == .diverged && d.string("message") == "loss is \"NaN\"\nat step 4")

        let epoch = EpochRecord(epoch: 1, iteration: 3, loss: 402.1, rmse: 20.05, valLoss: 290.2, valRmse: 17.03, w: 0.95, b: 0.44)
        let ep = try parse(EventEncoder.epoch(job: "j", seq: 6, record: epoch, precision: .float32))
        #expect(ep.type == .epoch && ep.int("epoch") == 1 && ep.int("iteration") == 3)
        for key in ["loss", "rmse", "val_loss", "val_rmse", "w", "b"] { #expect(ep.double(key) != nil, "\(key)") }
        #expect(ep.float("loss") == Float(402.1))

        let end = try parse(EventEncoder.end(job: "j", seq: 21, state: .finished, iteration: 12, epoch: 4, w: 1.3996835, b: 0.94196117,
                                             message: nil, precision: .float32))
        #expect(end.type == .end && end.state == .finished && end.int("iteration") == 12 && end.int("epoch") == 4)
        #expect(end.float("w") == Float(1.3996835))
    }

    @Test func eventReaderRejectsNonEvents() {
        for line in ["{\"type\":\"hello\",\"protocol\":1}", "{\"type\":\"step\",\"job\":\"j\"}", "{\"type\":\"step\",\"seq\":1}",
                     "[1]", "not json", "{\"type\":\"step\",\"job\":\"j\",\"seq\":\"1\"}"] {
            #expect(throws: JSONShapeError.self) { try Event(line: Array(line.utf8)) }
        }
    }

    @Test func jobStates() {
        #expect(JobState.allCases.filter(\.isFinal) == [.finished, .cancelled, .diverged, .failed, .damaged])
    }
}

@Suite struct ReplyTests {
    let status = JobStatus(job: "job1", state: .running, owner: 1000, created: "2026-11-29T08:40:00Z", iteration: 5, epoch: 2,
                           step: 2, stepsPerEpoch: 3, epochs: 4, totalSteps: 12, seq: 9, w: 0.9, b: 0.4, loss: 210.5,
                           rmse: 14.5, valLoss: 180.2, valRmse: 13.4, precision: .float32, fullName: "alice/job1")

    @Test func statusRoundTrips() throws {
        let json = status.json
        #expect(json["progress"] == .number("0.4167"))
        #expect(json["full_name"] == .string("alice/job1"))
        #expect(json["message"] == .null)
        #expect(try JobStatus(json: json) == status.rounded())
        let fresh = JobStatus(job: "j", state: .paused, owner: 0, created: "2026-01-01T00:00:00Z", stepsPerEpoch: 1, epochs: 1,
                              totalSteps: 1, seq: 2, w: 0, b: 0, precision: .float64)
        #expect(fresh.json["loss"] == nil)
        #expect(fresh.json["full_name"] == nil, "a daemon before names per owner sends none")
        #expect(fresh.json["reason"] == nil)
        #expect(try JobStatus(json: fresh.json) == fresh)
        let damaged = JobStatus(job: "d", state: .damaged, owner: 7, created: "", stepsPerEpoch: 0, epochs: 0, totalSteps: 0,
                                seq: 0, w: 0, b: 0, precision: .float32, reason: "checkpoint.json: unexpected end")
        #expect(damaged.json["state"] == .string("damaged"))
        #expect(damaged.json["reason"] == .string("checkpoint.json: unexpected end"))
        #expect(try JobStatus(json: damaged.json) == damaged)
    }

    @Test func replies() throws {
        func obj(_ line: [UInt8]) throws -> JSONValue {
            #expect(line.last == 0x0A)
            return try JSONParser.parse(line)
        }
        let daemon = ProcessIdentity(pid: 4242, uid: 997, gid: 997, user: "ltd")
        let peer = ProcessIdentity(pid: 5151, uid: 1000, gid: 1000, user: nil)
        let hello = try obj(Reply.hello(id: .number("1"), daemon: daemon, peer: peer))
        #expect(hello == (try JSONParser.parse("{\"type\":\"hello\",\"id\":1,\"protocol\":1,\"version\":\"0.2.0\",\"pid\":4242,\"uid\":997,\"gid\":997,\"user\":\"ltd\",\"peer\":{\"pid\":5151,\"uid\":1000,\"gid\":1000},\"capabilities\":[\"explain\",\"hello_peer\",\"spec_keras\",\"batch_rmse\",\"external_jobs\",\"owner_names\",\"damaged_jobs\",\"prune\",\"stats\"]}")))
        #expect(Capability.advertised(in: hello) == Set(Capability.allCases.map(\.rawValue)))
        // ltd 0.1.0's hello had no list: it offers nothing beyond protocol 1 as first released.
        #expect(Capability.advertised(in: try JSONParser.parse("{\"type\":\"hello\",\"protocol\":1,\"version\":\"0.1.0\"}")).isEmpty)
        #expect(ProcessIdentity(json: hello) == daemon && ProcessIdentity(json: hello["peer"]) == peer)
        #expect(daemon.described == "ltd (uid 997)" && peer.described == "uid 1000")
        #expect(ProcessIdentity(json: try JSONParser.parse("{\"pid\":1,\"uid\":-1,\"gid\":0}")) == nil)
        let started = try obj(Reply.started(id: .number("2"), job: "job1", status: status))
        #expect(started["type"] == .string("started") && started["job"] == .string("job1"))
        #expect(try JobStatus(json: started["status"] ?? .null).job == "job1")
        let jobs = try obj(Reply.jobs(id: nil, [status, status]))
        #expect(jobs["jobs"]?.arrayValue?.count == 2 && jobs["id"] == nil)
        let st = try obj(Reply.status(id: .string("x"), status))
        #expect(st["status"]?["seq"] == .number("9") && st["id"] == .string("x"))
        let ok = try obj(Reply.ok(id: .number("6"), op: "pause", job: "job1", state: .paused))
        #expect(ok == (try JSONParser.parse("{\"type\":\"ok\",\"id\":6,\"op\":\"pause\",\"job\":\"job1\",\"state\":\"paused\"}")))
        let unsub = try obj(Reply.ok(id: nil, op: "unsubscribe", job: nil, state: nil))
        #expect(unsub == (try JSONParser.parse("{\"type\":\"ok\",\"op\":\"unsubscribe\"}")))
        let sub = try obj(Reply.subscribed(id: .number("5"), job: "job1", from: 1, lastSeq: 17, state: .running, complete: false))
        #expect(sub == (try JSONParser.parse("{\"type\":\"subscribed\",\"id\":5,\"job\":\"job1\",\"from\":1,\"last_seq\":17,\"state\":\"running\",\"complete\":false}")))
    }
}

extension JobStatus {
    /// The status as a float32 job reports it: numbers rounded to float32.
    func rounded() -> JobStatus {
        var s = self
        func r(_ x: Double?) -> Double? { x.map { Double(Float($0)) } }
        s.w = Double(Float(w)); s.b = Double(Float(b))
        s.loss = r(loss); s.rmse = r(rmse); s.valLoss = r(valLoss); s.valRmse = r(valRmse)
        return s
    }
}

/// The real trainer's events, encoded: every line parses, carries its type, job and contiguous seq, and its numbers
/// read back to the exact values the trainer produced.
@Suite struct TrainerStreamTests {
    @Test(arguments: [Precision.float32, .float64])
    func wholeRunEncodes(_ precision: Precision) throws {
        var spec = try JobSpec(json: try JSONParser.parse(classicSpec()))
        spec.precision = precision
        var trainer = try Trainer(spec: spec)
        var seq = 1
        let start = try parse(EventEncoder.start(job: "job1", seq: seq, spec: spec, record: trainer.start))
        #expect(start.type == .start && start.double("w") == 0.5)
        var steps = 0
        while let event = trainer.next() {
            seq += 1
            switch event {
            case .step(let r):
                steps += 1
                let e = try parse(EventEncoder.step(job: "job1", seq: seq, record: r, spec: spec))
                #expect(e.type == .step && e.seq == seq && e.int("iteration") == r.iteration)
                for (key, value) in [("w_after", r.wAfter), ("b_after", r.bAfter), ("grad_w", r.gradW), ("loss", r.loss),
                                     ("val_rmse", r.valRmse)] {
                    let read = try #require(e.double(key))
                    #expect(precision == .float32 ? Float(read) == Float(value) : read == value, "\(key)")
                }
                #expect(e.ints("batch.indices") == r.batch.indices)
            case .epoch(let r):
                let e = try parse(EventEncoder.epoch(job: "job1", seq: seq, record: r, precision: precision))
                #expect(e.type == .epoch && e.int("epoch") == r.epoch)
            case .finished(let w, let b):
                let e = try parse(EventEncoder.end(job: "job1", seq: seq, state: .finished, iteration: steps, epoch: spec.epochs,
                                                   w: w, b: b, message: nil, precision: precision))
                #expect(e.type == .end && e.state == .finished)
            case .diverged(_, let message):
                Issue.record("unexpected divergence: \(message)")
            }
        }
        #expect(steps == 12)
    }
}
