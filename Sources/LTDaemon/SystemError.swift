#if canImport(Glibc)
import Glibc
#endif

/// A failed system call, with the path and the errno text: what a log line or a startup error needs.
struct SystemError: Error, CustomStringConvertible {
    let operation: String
    let path: String
    let code: Int32
    var description: String { "\(operation) \(path): \(errnoText(code))" }
}
