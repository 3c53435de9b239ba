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

/// Small POSIX file helpers. Everything the daemon stores is written with these; none follows a client-named path.
enum FileIO {
    static func writeAll(fd: Int32, _ base: UnsafeRawPointer, _ count: Int) -> Int32? {
        var done = 0
        while done < count {
            let n = write(fd, base + done, count - done)
            if n < 0 {
                if errno == EINTR { continue }
                return errno
            }
            done += n
        }
        return nil
    }

    static func readAll(path: String, limit: Int = 1 << 30) throws(SystemError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { throw SystemError(operation: "open", path: path, code: errno) }
        defer { close(fd) }
        var result: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while result.count < limit {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw SystemError(operation: "read", path: path, code: errno)
            }
            if n == 0 { break }
            result.append(contentsOf: buffer[0..<n])
        }
        return result
    }

    /// Writes `bytes` to `path` atomically: a temporary file in the same directory, fsync, rename, fsync of the
    /// directory. A reader sees the old file or the new one, never a torn one, even after a crash.
    static func writeAtomically(_ bytes: [UInt8], to path: String, directory: String, sync: Bool = true) throws(SystemError) {
        let temporary = path + ".tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw SystemError(operation: "create", path: temporary, code: errno) }
        let failure: Int32? = bytes.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return nil }
            return writeAll(fd: fd, base, raw.count)
        }
        if let failure {
            close(fd)
            throw SystemError(operation: "write", path: temporary, code: failure)
        }
        if sync, fsync(fd) != 0 {
            let code = errno
            close(fd)
            throw SystemError(operation: "fsync", path: temporary, code: code)
        }
        close(fd)
        guard rename(temporary, path) == 0 else { throw SystemError(operation: "rename", path: temporary, code: errno) }
        if sync { syncDirectory(directory) }
    }

    static func syncDirectory(_ directory: String) {
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 { _ = fsync(fd); close(fd) }
    }

    /// Creates `path` and any missing parents with `mode`. Existing directories are left as they are.
    static func makeDirectories(_ path: String, mode: mode_t) throws(SystemError) {
        var prefix = path.hasPrefix("/") ? "/" : ""
        for component in path.split(separator: "/") {
            prefix += component
            if mkdir(prefix, mode) != 0, errno != EEXIST {
                throw SystemError(operation: "mkdir", path: prefix, code: errno)
            }
            prefix += "/"
        }
    }

    static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    /// Names in a directory, without `.` and `..`.
    static func list(_ directory: String) throws(SystemError) -> [String] {
        guard let dir = opendir(directory) else { throw SystemError(operation: "opendir", path: directory, code: errno) }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    /// Removes a directory tree that the daemon itself created (a job's directory). Does not follow symlinks.
    static func removeTree(_ path: String) throws(SystemError) {
        var info = stat()
        guard lstat(path, &info) == 0 else { throw SystemError(operation: "stat", path: path, code: errno) }
        if (info.st_mode & S_IFMT) == S_IFDIR {
            for name in try list(path) { try removeTree(path + "/" + name) }
            guard rmdir(path) == 0 else { throw SystemError(operation: "rmdir", path: path, code: errno) }
        } else {
            guard unlink(path) == 0 else { throw SystemError(operation: "unlink", path: path, code: errno) }
        }
    }
}

/// Wall-clock and monotonic time without Foundation.
enum Clock {
    static func monotonicNanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }

    /// Now as RFC 3339 UTC with seconds, e.g. `2026-11-29T08:40:00Z`.
    static func utcTimestamp() -> String {
        var now = time(nil)
        var parts = tm()
        gmtime_r(&now, &parts)
        var buffer = [CChar](repeating: 0, count: 32)
        let n = strftime(&buffer, buffer.count, "%Y-%m-%dT%H:%M:%SZ", &parts)
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
