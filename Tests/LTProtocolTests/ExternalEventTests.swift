import Foundation
import Testing
@testable import LTProtocol
@testable import LTEngine

/// What a publisher may send to an external job, and the lines the daemon writes for it.
@Suite struct ExternalEventTests {
    /// 10 rows in batches of 4: steps of 4, 4 and 2 rows; RMSprop's one slot.
    func stream(shuffled: Bool = false) -> ExternalStream {
        let spec = JobSpec(data: Dataset(x: (0..<10).map(Double.init), y: (0..<10).map { 2 * Double($0) }),
                           initialization: .constant(kernel: 0.5, bias: 0),
                           optimizer: OptimizerSpec(name: .rmsprop, learningRate: 0.05), epochs: 2, batchSize: 4)
        return ExternalStream(job: "nb1", spec: spec, stepsPerEpoch: 3, totalSteps: 6, slotNames: ["velocity"], w: 0.5, b: 0,
                              shuffled: shuffled)
    }

    func json(_ text: String) throws -> JSONValue { try JSONParser.parse(Array(text.utf8)) }

    func step(_ iteration: Int, size: Int? = nil, indices: String? = nil, extra: String = "") -> String {
        let epoch = (iteration - 1) / 3 + 1, step = (iteration - 1) % 3 + 1
        let rows = step < 3 ? 4 : 2
        let first = (step - 1) * 4
        let list = indices ?? "[" + (first..<first + (size ?? rows)).map(String.init).joined(separator: ",") + "]"
        return #"{"type":"step","epoch":\#(epoch),"step":\#(step),"iteration":\#(iteration),"batch":{"size":\#(size ?? rows),"indices":\#(list)},"w_before":0.5,"b_before":0,"w_after":0.1,"b_after":0.2,"loss":3.5,"rmse":1.8708287,"slots":{"kernel":{"velocity":0.25},"bias":{"velocity":0.125}}\#(extra)}"#
    }

    @Test func aStepIsWrittenWithItsSeqInTheJobsPrecision() throws {
        var s = stream()
        let (lines, outcome) = try s.accept(try json(step(1)), seq: 3)
        #expect(lines.count == 1)
        let event = try Event(line: lines[0])
        #expect(event.type == .step && event.seq == 3 && event.job == "nb1")
        #expect(event.ints("batch.indices") == [0, 1, 2, 3])
        #expect(event.float("w_after") == Float(0.1))
        #expect(String(decoding: lines[0], as: UTF8.self).contains(#""w_after":0.1,"#))
        #expect(event.double("slots.kernel.velocity") == 0.25)
        #expect(event.value("grad_w") == nil && event.value("val_loss") == nil)
        #expect(outcome == .step(epoch: 1, step: 1, iteration: 1, w: Double(Float(0.1)), b: Double(Float(0.2)),
                                 loss: 3.5, rmse: Double(Float(1.8708287)), valLoss: nil, valRmse: nil))
        #expect(s.iteration == 1)
    }

    @Test func stepsMustComeInOrderWithTheirBatchSize() throws {
        var s = stream()
        #expect(throws: ProtocolError.self) { try s.accept(try json(step(2)), seq: 3) }
        _ = try s.accept(try json(step(1)), seq: 3)
        _ = try s.accept(try json(step(2)), seq: 4)
        // The last batch of the epoch has 2 rows.
        do {
            _ = try s.accept(try json(step(3, size: 4, indices: "[8,9,0,1]")), seq: 5)
            Issue.record("a 4-row third step was accepted")
        } catch let error as ProtocolError {
            #expect(error.field == "event.batch.size")
            #expect(error.message.contains("has 2"))
        }
        _ = try s.accept(try json(step(3)), seq: 5)
        #expect(s.iteration == 3)
    }

    @Test func badEventsNameTheFieldAndChangeNothing() throws {
        var s = stream()
        let cases: [(String, String)] = [
            (step(1, indices: "[0,1,2,10]"), "event.batch.indices[3]"),
            (step(1, indices: "[0,1,2]"), "event.batch.indices"),
            (step(1, extra: #","grad_w":1"#), "event.grad_w"),
            (#"{"type":"start"}"#, "event.type"),
            (#"{"type":"step","epoch":1,"step":1,"iteration":1,"batch":{"size":4,"indices":[0,1,2,3]},"w_before":"x"}"#, "event.w_before"),
            (step(1).replacingOccurrences(of: #"{"velocity":0.25}"#, with: #"{"momentum":0.25}"#), "event.slots.kernel.momentum"),
            (#"{"type":"epoch","epoch":1,"loss":1}"#, "event.epoch"),
            (#"{"type":"end","state":"finished"}"#, "event.state"),
            (#"{"type":"end","state":"running"}"#, "event.state"),
        ]
        for (text, field) in cases {
            do {
                _ = try s.accept(try json(text), seq: 3)
                Issue.record("accepted: \(text)")
            } catch let error as ProtocolError {
                #expect(error.code == .badRequest)
                #expect(error.field == field, "\(text): \(error)")
            }
        }
        #expect(s.iteration == 0 && !s.ended)
    }

    /// A publisher is an untrusted client: odd values are refused, never trapped on.
    @Test func oddValuesAreRefusedNotTrappedOn() throws {
        var s = stream()
        let odd = ["1e400", "-1", "9223372036854775807", "18446744073709551616", "null", "[]", "{}", "\"x\"", "true", "0.5"]
        for value in odd {
            for key in ["iteration", "epoch", "step"] {
                let text = step(1).replacingOccurrences(of: "\"\(key)\":1,", with: "\"\(key)\":\(value),")
                #expect(throws: ProtocolError.self, "\(key): \(value)") { try s.accept(try json(text), seq: 3) }
            }
            let sized = step(1).replacingOccurrences(of: "\"size\":4", with: "\"size\":\(value)")
            #expect(throws: ProtocolError.self) { try s.accept(try json(sized), seq: 3) }
            let indexed = step(1).replacingOccurrences(of: "[0,1,2,3]", with: "[0,1,2,\(value)]")
            #expect(throws: ProtocolError.self) { try s.accept(try json(indexed), seq: 3) }
            let epoch = #"{"type":"epoch","epoch":\#(value),"loss":1}"#
            #expect(throws: ProtocolError.self) { try s.accept(try json(epoch), seq: 3) }
        }
        for text in ["1", "[]", "\"step\"", #"{"type":7}"#, #"{"type":"step"}"#, #"{"type":"end"}"#, #"{"type":"end","state":"finished","message":3}"#] {
            #expect(throws: ProtocolError.self, "\(text)") { try s.accept(try json(text), seq: 3) }
        }
        #expect(s.iteration == 0 && !s.ended)
    }

    @Test func nonFiniteLossesAreRecorded() throws {
        var s = stream()
        let text = step(1).replacingOccurrences(of: #""loss":3.5"#, with: #""loss":"NaN""#)
        let (lines, _) = try s.accept(try json(text), seq: 3)
        #expect(try Event(line: lines[0]).double("loss")?.isNaN == true)
    }

    @Test func aShuffledRunCarriesNoRows() throws {
        var s = stream(shuffled: true)
        #expect(throws: ProtocolError.self) { try s.accept(try json(step(1)), seq: 3) }
        let noRows = step(1).replacingOccurrences(of: #","indices":[0,1,2,3]"#, with: "")
        let (lines, _) = try s.accept(try json(noRows), seq: 3)
        #expect(try Event(line: lines[0]).value("batch.indices") == nil)
    }

    @Test func epochsAndTheEnd() throws {
        var s = stream()
        for i in 1...3 { _ = try s.accept(try json(step(i)), seq: 2 + i) }
        let (epoch, _) = try s.accept(try json(#"{"type":"epoch","epoch":1,"loss":2,"rmse":1.4142135,"val_loss":1}"#), seq: 6)
        let e = try Event(line: epoch[0])
        #expect(e.type == .epoch && e.int("iteration") == 3 && e.float("w") == Float(0.1))
        #expect(throws: ProtocolError.self) { try s.accept(try json(#"{"type":"end","state":"finished"}"#), seq: 7) }
        let (lines, outcome) = try s.accept(try json(#"{"type":"end","state":"cancelled","message":"stopped early"}"#), seq: 7)
        #expect(outcome == .end(state: .cancelled, message: "stopped early"))
        #expect(try lines.map { try Event(line: $0).type } == [.state, .end])
        #expect(try Event(line: lines[1]).seq == 8)
        #expect(s.ended)
        do {
            _ = try s.accept(try json(step(4)), seq: 9)
            Issue.record("accepted after end")
        } catch let error as ProtocolError {
            #expect(error.code == .wrongState)
        }
    }

    @Test func createAndPublishRequests() throws {
        let spec = #"{"data":{"x":[1,2],"y":[3,4]},"init":{"kernel":0.5,"bias":0},"optimizer":{"name":"sgd"},"batch_size":2}"#
        let line = #"{"op":"create","job":"nb1","spec":\#(spec),"platform":{"keras":"3.15.1","onednn":true},"shuffled":true}"#
        guard case .success(let decoded) = RequestLine.decode(Array(line.utf8)),
              case .create(let job, let decodedSpec, let run) = decoded.request else {
            Issue.record("create did not decode"); return
        }
        #expect(job == "nb1" && decodedSpec.batchSize == 2 && run.shuffled)
        #expect(run.platform["keras"]?.stringValue == "3.15.1")
        // A run Keras shuffled after set_random_seed(S): replicable, its rows unknown to the publisher.
        let seeded = #"{"op":"create","job":"nb1","spec":{"data":{"x":[1,2],"y":[3,4]},"init":{"kernel":0.5,"bias":0},"optimizer":{"name":"sgd"},"shuffle":{"seed":42}}}"#
        guard case .success(let s) = RequestLine.decode(Array(seeded.utf8)), case .create(_, let seededSpec, let seededRun) = s.request else {
            Issue.record("seeded create did not decode"); return
        }
        #expect(seededSpec.shuffle == .seeded(42) && seededRun.shuffled)
        guard case .success(let again) = RequestLine.decode(decoded.line) else { Issue.record("re-encoded create did not decode"); return }
        #expect(again == decoded)
        let refused: [(String, ErrorCode, String)] = [
            (#"{"op":"create","job":"nb1","spec":{"data":{"x":[1],"y":[2]},"optimizer":{"name":"sgd"},"init":{"initializer":"glorot_uniform"}}}"#, .invalidSpec, "init"),
            (#"{"op":"create","job":"nb1","spec":{"data":{"x":[1],"y":[2]},"optimizer":{"name":"sgd"},"init":{"kernel":1,"bias":0},"shuffle":{"order":[[0]]}}}"#, .invalidSpec, "shuffle"),
            (#"{"op":"create","job":"nb1","spec":\#(spec),"platform":{"gpu":"yes"}}"#, .badRequest, "platform.gpu"),
            (#"{"op":"create","job":"nb1","spec":\#(spec),"platform":{"keras":3}}"#, .badRequest, "platform.keras"),
            (#"{"op":"create","job":"nb1","spec":\#(spec),"shuffled":"no"}"#, .badRequest, "shuffled"),
            (#"{"op":"publish","job":"nb1"}"#, .badRequest, "event"),
            (#"{"op":"publish","job":"nb1","event":[1]}"#, .badRequest, "event"),
        ]
        for (text, code, field) in refused {
            guard case .failure(let error) = RequestLine.decode(Array(text.utf8)) else { Issue.record("accepted \(text)"); continue }
            #expect(error.code == code && error.field == field, "\(text): \(error)")
        }
    }

    @Test func statusCarriesTheKind() throws {
        let status = JobStatus(job: "nb1", state: .running, owner: 1000, created: "2026-12-02T07:00:00Z", stepsPerEpoch: 3,
                               epochs: 2, totalSteps: 6, seq: 2, w: 0.5, b: 0, precision: .float32, kind: .external)
        #expect(status.json["kind"]?.stringValue == "external")
        #expect(try JobStatus(json: status.json) == status)
    }
}
