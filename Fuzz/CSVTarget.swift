// libFuzzer target: ltctl's CSV reader, with detected and with forced delimiters. A thrown InputError is a correct
// answer; a crash is a finding. Built and run by scripts/fuzz.
import LTData

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCSV(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    let formats = [CSVFormat.automatic, CSVFormat(delimiter: ";", decimalComma: true), CSVFormat(delimiter: "\t", decimalComma: false)]
    for format in formats {
        if let points = try? CSVReader.parse(text, name: "fuzz.csv", xColumn: nil, yColumn: nil, format: format) {
            guard points.x.count == points.y.count, points.x.allSatisfy(\.isFinite), points.y.allSatisfy(\.isFinite) else {
                fatalError("CSVReader returned unequal columns or a non-finite number")
            }
            _ = try? points.split(validationFraction: 0.2)
        }
    }
    _ = try? CSVReader.parse(text, name: "fuzz.csv", xColumn: "y", yColumn: "2", format: .automatic)
    return 0
}
