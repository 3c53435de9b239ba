#if canImport(Glibc)
import Glibc
#endif

/// Small POSIX file helpers. Everything the daemon stores is written with these; none follows a symbolic link
/// (every state file is opened with O_NOFOLLOW) and none opens a client-named path. Every write, fsync and rename
/// of a state file goes through here, where the test hook `FaultPlan` can make it fail.
enum FileIO {
    /// Opens a state file: never through a symbolic link, never inherited by a child.
    static func open(_ path: String, _ flags: Int32, mode: mode_t = 0o600) -> Int32 {
        Glibc.open(path, flags | O_CLOEXEC | O_NOFOLLOW, mode)
    }

    /// Writes all of `count` bytes; returns the errno of a failed write.
    static func writeAll(fd: Int32, _ base: UnsafeRawPointer, _ count: Int, path: String) -> Int32? {
        if let injected = FaultPlan.failure(of: .write, path: path) { return injected }
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

    static func sync(fd: Int32, path: String) throws(SystemError) {
        if let injected = FaultPlan.failure(of: .fsync, path: path) {
            throw SystemError(operation: "fsync", path: path, code: injected)
        }
        guard fsync(fd) == 0 else { throw SystemError(operation: "fsync", path: path, code: errno) }
    }

    static func rename(_ from: String, to: String) throws(SystemError) {
        if let injected = FaultPlan.failure(of: .rename, path: from) {
            throw SystemError(operation: "rename", path: from, code: injected)
        }
        guard Glibc.rename(from, to) == 0 else { throw SystemError(operation: "rename", path: from, code: errno) }
    }

    static func readAll(path: String, limit: Int = 1 << 30) throws(SystemError) -> [UInt8] {
        let fd = open(path, O_RDONLY)
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

    /// Writes `bytes` to `path` atomically and durably: a temporary file in the same directory, fsync, rename,
    /// fsync of the directory. A reader sees the old file or the new one, never a torn one, even after a crash.
    /// On failure the old file is untouched.
    static func writeAtomically(_ bytes: [UInt8], to path: String, directory: String) throws(SystemError) {
        let temporary = path + ".tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC)
        guard fd >= 0 else { throw SystemError(operation: "create", path: temporary, code: errno) }
        do throws(SystemError) {
            let failure: Int32? = bytes.withUnsafeBytes { raw in
                guard let base = raw.baseAddress else { return nil }
                return writeAll(fd: fd, base, raw.count, path: temporary)
            }
            if let failure { throw SystemError(operation: "write", path: temporary, code: failure) }
            try sync(fd: fd, path: temporary)
            close(fd)
        } catch {
            close(fd)
            unlink(temporary)
            throw error
        }
        do throws(SystemError) { try rename(temporary, to: path) } catch {
            unlink(temporary)
            throw error
        }
        try syncDirectory(directory)
    }

    /// Makes a directory's entries (a new or renamed file) durable.
    static func syncDirectory(_ directory: String) throws(SystemError) {
        let fd = open(directory, O_RDONLY | O_DIRECTORY)
        guard fd >= 0 else { throw SystemError(operation: "open", path: directory, code: errno) }
        defer { close(fd) }
        try sync(fd: fd, path: directory)
    }

    /// A file's size in bytes, 0 when it cannot be read (what `--max-state-bytes` counts).
    static func size(_ path: String) -> Int {
        var info = stat()
        return lstat(path, &info) == 0 ? Int(info.st_size) : 0
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
