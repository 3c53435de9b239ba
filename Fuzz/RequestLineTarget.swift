// libFuzzer target: one request line through everything the daemon does with it before touching state — the JSON
// parser, request decoding, spec decoding, the trainer's preparation, and the spec file the daemon would write.
// Built and run by scripts/fuzz; a crash (a trap, an overflow, an out-of-bounds access) is a finding.
import LTEngine
import LTProtocol

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRequestLine(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let line = UnsafeBufferPointer(start: data, count: size)
    switch RequestLine.decode(line) {
    case .failure(let error):
        // Every refusal is itself a well-formed line the client can parse.
        guard (try? JSONParser.parse(error.line)) != nil else { fatalError("error line is not JSON: \(error)") }
    case .success(let request):
        guard case .start(_, let spec) = request.request else { return 0 }
        _ = try? Trainer(spec: spec)
        // The spec file the daemon writes must read back as the same spec.
        var writer = JSONWriter(precision: .float64, capacity: 4096)
        writer.value(spec.json)
        guard let reread = try? JobSpec(json: JSONParser.parse(writer.bytes)) else {
            fatalError("the spec's own JSON does not decode: \(String(decoding: writer.bytes, as: UTF8.self))")
        }
        _ = reread
    }
    return 0
}
