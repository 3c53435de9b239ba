import Foundation
import LTData

/// Everything ltctl does to a terminal, in one place: its size, and the full-screen mode of `watch`.
enum Terminal {
    /// `$COLUMNS` when it holds a positive number (ls and git honour it too).
    static var environmentColumns: Int? {
        ProcessInfo.processInfo.environment["COLUMNS"].flatMap(Int.init).flatMap { $0 > 0 ? $0 : nil }
    }

    /// The size of the terminal behind `fd` (TIOCGWINSZ), or nil when it is not a terminal.
    static func size(fd: Int32) -> (columns: Int, rows: Int)? {
        guard isatty(fd) == 1 else { return nil }
        var size = winsize()
        guard ioctl(fd, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0, size.ws_row > 0 else { return nil }
        return (Int(size.ws_col), Int(size.ws_row))
    }

    /// The width line-oriented output should fit, or nil when `fd` is not a terminal (then output keeps full
    /// detail). `$COLUMNS` wins over the terminal's own width.
    static func width(fd: Int32) -> Int? {
        guard isatty(fd) == 1 else { return nil }
        return environmentColumns ?? size(fd: fd)?.columns
    }
}

/// The terminal mode of `ltctl watch`: keys arrive one by one without echo (Ctrl-C too, as a byte) and, unless
/// `alternate` is false (`--plain`), output goes to the alternate screen with the cursor hidden. `restore()` puts
/// everything back exactly as it was; the caller restores on every way out, and restoring twice is harmless.
final class FullScreen {
    private let input: Int32
    private let output: Int32
    private var saved = termios()
    private var active = false
    private let alternate: Bool

    /// ESC sequences used: alternate screen (1049), cursor hidden (25), home, erase to end of line / screen.
    static let enter = "\u{1B}[?1049h\u{1B}[?25l\u{1B}[H\u{1B}[2J"
    static let leave = "\u{1B}[?25h\u{1B}[?1049l"
    static let home = "\u{1B}[H"
    static let eraseLine = "\u{1B}[K"
    static let eraseBelow = "\u{1B}[J"

    init(alternate: Bool, input: Int32 = STDIN_FILENO, output: Int32 = STDOUT_FILENO) throws {
        self.input = input
        self.output = output
        self.alternate = alternate
        guard tcgetattr(input, &saved) == 0 else { throw InputError("cannot read the terminal's settings: \(String(cString: strerror(errno)))") }
        var raw = saved
        raw.c_lflag &= ~tcflag_t(ICANON | ECHO | ISIG | IEXTEN)
        raw.c_iflag &= ~tcflag_t(IXON | ICRNL)
        withUnsafeMutableBytes(of: &raw.c_cc) { cc in
            cc[Int(VMIN)] = 1
            cc[Int(VTIME)] = 0
        }
        guard tcsetattr(input, TCSAFLUSH, &raw) == 0 else { throw InputError("cannot set the terminal to raw mode: \(String(cString: strerror(errno)))") }
        active = true
        if alternate { write(Self.enter) }
    }

    func write(_ text: String) {
        var bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeMutableBytes { Glibc.write(output, $0.baseAddress.map { $0 + offset }, $0.count - offset) }
            if n > 0 { offset += n } else if n < 0 && errno == EINTR { continue } else { return }
        }
        bytes.removeAll()
    }

    func restore() {
        guard active else { return }
        active = false
        if alternate { write(Self.leave) }
        tcsetattr(input, TCSAFLUSH, &saved)
    }

    deinit { restore() }
}

/// Signals taken synchronously by a poll loop instead of by a handler: SIGWINCH (resize), SIGINT, SIGTERM, SIGHUP
/// stay blocked while this exists, and `take()` collects the ones pending (sigtimedwait with a zero timeout). The
/// loop polls at least ten times a second, so a signal waits at most that long.
final class PendingSignals {
    private var mask = sigset_t()
    private var previous = sigset_t()

    init(_ signals: [Int32]) {
        sigemptyset(&mask)
        for signal in signals { sigaddset(&mask, signal) }
        sigprocmask(SIG_BLOCK, &mask, &previous)
    }

    /// The signals that arrived since the last call.
    func take() -> [Int32] {
        var result: [Int32] = []
        var zero = timespec(tv_sec: 0, tv_nsec: 0)
        while true {
            let signal = sigtimedwait(&mask, nil, &zero)
            if signal > 0 { result.append(signal) } else { return result }
        }
    }

    deinit { sigprocmask(SIG_SETMASK, &previous, nil) }
}
