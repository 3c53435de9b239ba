import Testing
import Synchronization
#if canImport(Glibc)
import Glibc
#endif
@testable import LTDaemon

/// Job threads must leave signals to the loop thread (libuv's signal handles are there).
@Suite struct ThreadEntryTests {
    final class Seen: Sendable {
        let blocked = Mutex<[Int32]>([])
    }

    @Test("a thread from ThreadEntry.start runs with every signal blocked, and the caller's mask is left as it was")
    func startBlocksEverySignal() throws {
        let probe = [SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGCHLD]
        var before = sigset_t()
        pthread_sigmask(SIG_SETMASK, nil, &before)
        let seen = Seen()
        let thread = try ThreadEntry.start {
            var mask = sigset_t()
            pthread_sigmask(SIG_SETMASK, nil, &mask)
            let blocked = probe.filter { sigismember(&mask, $0) == 1 }
            seen.blocked.withLock { $0 = blocked }
        }.get()
        pthread_join(thread, nil)
        #expect(seen.blocked.withLock { $0 } == probe)
        var after = sigset_t()
        pthread_sigmask(SIG_SETMASK, nil, &after)
        for number in probe { #expect(sigismember(&after, number) == sigismember(&before, number), "signal \(number)") }
    }
}
