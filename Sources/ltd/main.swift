import ArgumentParser
import LTDaemon
import LTProtocol
#if canImport(Glibc)
import Glibc
#endif

/// `ltd`: the training daemon. Parses flags, resolves defaults, and hands over to `Daemon`.
@main
struct LTD: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ltd",
        abstract: "Train a one-feature linear regression exactly as Keras does, and stream every optimizer step.",
        discussion: """
        ltd listens on a Unix socket and speaks newline-delimited JSON (protocol v1, docs/PROTOCOL.md). Clients \
        such as `ltctl` start jobs, watch them step by step, and pause, resume, step or cancel them. Each user \
        names their own jobs (alice's job1 is alice/job1 to others); its owner, root and members of the admin \
        group may control a job, and anyone may watch it. Every job runs on its own thread; every event goes to an append-only log under the state directory, so any number \
        of watchers see every event, in order, however slowly they read, and jobs survive a restart.

        Defaults:
          socket      $LTD_SOCKET, else /run/ltd/ltd.sock as root, else $XDG_RUNTIME_DIR/ltd/ltd.sock
          state dir   $LTD_STATE_DIR, else $STATE_DIRECTORY (systemd), else /var/lib/ltd as root,
                      else $XDG_STATE_HOME/ltd (~/.local/state/ltd)

        Limits on what clients may cost (beyond one: an error line, then the connection
        closes; each limit is logged once when reached and once when left):
          --max-connections, --max-connections-per-user  too_many_connections
          --max-pending-line-bytes, --max-line-bytes     busy, line_too_long
          --max-queued-bytes  a client's unread output: its requests wait past half
                              of it; a reply larger than half gets busy. Events
                              wait in the job's log: a slow subscriber loses none.

        Start-up: ltd listens and reports ready at once, then restores the jobs of its state directory in the \
        background; until it is done, `list` and requests naming a job not restored yet wait for it. A job \
        directory it cannot read is listed as `damaged` with the reason, its files untouched; delete it when done.

        Retention: --keep-finished DURATION (e.g. 14d, 12h, 30m; off by default) removes jobs that are over \
        (finished, cancelled, diverged, failed; never damaged, running or paused jobs) once they ended longer ago \
        than DURATION. ltd checks when restore is done, then every quarter of DURATION (at most hourly), and logs \
        one line per job removed. Users prune their own jobs by hand with `ltctl prune`; root and the admin group \
        everyone's with `ltctl prune --all`.

        Signals: SIGTERM, SIGINT and SIGHUP (a closed terminal) each checkpoint every job, deliver what they wrote \
        to the watchers, and exit 0; during start-up and restore too (jobs not restored yet are left untouched).
        Under systemd, ltd accepts a socket passed by socket activation and reports READY/STATUS/STOPPING.

        Disk: each job's log, and the logs and specs of all jobs together, are limited (--max-log-bytes, \
        --max-state-bytes); start refuses a job that cannot fit, counting at least 200 bytes per step and 4 per \
        data row (disk_limit, with the numbers). A job whose log reaches a limit, or whose log or checkpoint \
        cannot be written (a full disk, an I/O error), stops as failed, naming the cause; its events so far are \
        kept. See docs/RELIABILITY.md.

        Quotas per user (uid): jobs kept (--max-jobs-per-user), jobs unfinished at once (--max-running-per-user) \
        and bytes of logs and specs (--max-bytes-per-user), within the daemon-wide --max-jobs and \
        --max-state-bytes. A refusal (too_many_jobs, disk_limit) names the quota, the numbers and how to free it; \
        other users are unaffected. `ltctl top` shows each limit with its current use.

        Exit status: 0 after a signal; 1 when ltd cannot start (the message says why); 64 for a bad flag; 65 when \
        the state directory was written by a newer ltd (its `format` file holds a higher version): a restart \
        cannot help, run the newer ltd.

        Examples:
          ltd                                        # user daemon on the default socket
          ltd --socket /tmp/ltd.sock --state-dir /tmp/ltd-state --log-level debug
          LTD_SOCKET=/tmp/ltd.sock ltctl hello       # then talk to it
        """,
        version: DefaultPaths.daemonVersion
    )

    @Option(name: .long, help: ArgumentHelp("Unix socket to listen on (must fit in 107 bytes).", valueName: "path"))
    var socket: String?

    @Option(name: .customLong("state-dir"), help: ArgumentHelp("Directory for job specs, event logs and checkpoints.", valueName: "dir"))
    var stateDir: String?

    @Option(name: .customLong("max-line-bytes"), help: ArgumentHelp("Longest request line accepted; longer lines get line_too_long and the connection is closed.", valueName: "bytes"))
    var maxLineBytes: Int = DaemonConfiguration.defaultMaxLineBytes

    @Option(name: .customLong("max-jobs"), help: ArgumentHelp("Most jobs kept at once (running or finished); start beyond it gets too_many_jobs.", valueName: "n"))
    var maxJobs: Int = DaemonConfiguration.defaultMaxJobs

    @Option(name: .customLong("admin-group"), help: ArgumentHelp("Members of this group may pause, step, cancel and delete any user's jobs (like CUPS's lpadmin); owners and root always may.", valueName: "group"))
    var adminGroup: String = DaemonConfiguration.defaultAdminGroup

    @Option(name: .customLong("max-connections"), help: ArgumentHelp("Most client connections at once; beyond it a client gets too_many_connections.", valueName: "n"))
    var maxConnections: Int = DaemonConfiguration.defaultMaxConnections

    @Option(name: .customLong("max-connections-per-user"), help: ArgumentHelp("Most connections at once from one uid; beyond it that user gets too_many_connections.", valueName: "n"))
    var maxConnectionsPerUser: Int = DaemonConfiguration.defaultMaxConnectionsPerUser

    @Option(name: .customLong("max-pending-line-bytes"), help: ArgumentHelp("Most bytes of unfinished request lines (sent without their newline yet) held for all clients together; the connection that would pass it gets busy.", valueName: "bytes"))
    var maxPendingLineBytes: Int = DaemonConfiguration.defaultMaxPendingLineBytes

    @Option(name: .customLong("max-queued-bytes"), help: ArgumentHelp("Most bytes of output queued for one client that does not read: events are pulled from the log up to a quarter of it, requests wait past half of it, and a reply larger than half of it gets busy.", valueName: "bytes"))
    var maxQueuedBytes: Int = DaemonConfiguration.defaultMaxQueuedBytes

    @Option(name: .customLong("max-log-bytes"), help: ArgumentHelp("Most bytes of log one job may write (default 1 GiB); start refuses a job that cannot fit, and a job that reaches it fails.", valueName: "bytes"))
    var maxLogBytes: Int = DiskLimits.defaultMaxLogBytes

    @Option(name: .customLong("max-state-bytes"), help: ArgumentHelp("Most bytes of logs and specs of all jobs together (default 10 GiB); start refuses a job that would pass it, and a job whose log would fails.", valueName: "bytes"))
    var maxStateBytes: Int = DiskLimits.defaultMaxStateBytes

    @Option(name: .customLong("max-jobs-per-user"), help: ArgumentHelp("Most jobs one uid may keep (running or finished); start beyond it gets too_many_jobs.", valueName: "n"))
    var maxJobsPerUser: Int = DiskLimits.defaultMaxJobsPerUser

    @Option(name: .customLong("keep-finished"), help: ArgumentHelp("Remove jobs that are over once they ended longer ago than this: a whole number with a unit, s, m, h or d (e.g. 14d). Off by default: jobs are kept until deleted.", valueName: "duration"))
    var keepFinished: String?
    @Option(name: .customLong("max-running-per-user"), help: ArgumentHelp("Most unfinished jobs (running or paused) one uid may have at once; start beyond it gets too_many_jobs.", valueName: "n"))
    var maxRunningPerUser: Int = DiskLimits.defaultMaxRunningPerUser

    @Option(name: .customLong("max-bytes-per-user"), help: ArgumentHelp("Most bytes of logs and specs one uid's jobs may take together (default 2 GiB); start refuses a job that cannot fit in what is left (disk_limit), and a job whose log would pass it fails.", valueName: "bytes"))
    var maxBytesPerUser: Int = DiskLimits.defaultMaxBytesPerUser

    @Option(name: .customLong("log-level"), help: ArgumentHelp("How much to log on stderr: error, warning, info or debug.", valueName: "level"))
    var logLevel: String = "info"

    func validate() throws {
        guard maxLineBytes >= 1024, maxLineBytes <= 1 << 30 else {
            throw ValidationError("--max-line-bytes must be between 1024 and 1073741824 (1 GiB); got \(maxLineBytes)")
        }
        guard maxJobs >= 1, maxJobs <= 1_000_000 else {
            throw ValidationError("--max-jobs must be between 1 and 1000000; got \(maxJobs)")
        }
        guard maxConnections >= 1, maxConnections <= 1_000_000, maxConnectionsPerUser >= 1, maxConnectionsPerUser <= maxConnections else {
            throw ValidationError("--max-connections must be between 1 and 1000000, and --max-connections-per-user between 1 and --max-connections; got \(maxConnections) and \(maxConnectionsPerUser)")
        }
        guard maxPendingLineBytes >= 1024, maxPendingLineBytes <= 1 << 40 else {
            throw ValidationError("--max-pending-line-bytes must be between 1024 and 1099511627776 (1 TiB); got \(maxPendingLineBytes)")
        }
        guard maxQueuedBytes >= 65536, maxQueuedBytes <= 1 << 30 else {
            throw ValidationError("--max-queued-bytes must be between 65536 and 1073741824 (1 GiB); got \(maxQueuedBytes)")
        }
        guard maxLogBytes >= 65536, maxStateBytes >= maxLogBytes, maxStateBytes <= 1 << 50 else {
            throw ValidationError("--max-log-bytes must be at least 65536, and --max-state-bytes at least --max-log-bytes and at most 2^50; got \(maxLogBytes) and \(maxStateBytes)")
        }
        guard maxJobsPerUser >= 1, maxJobsPerUser <= 1_000_000 else {
            throw ValidationError("--max-jobs-per-user must be between 1 and 1000000; got \(maxJobsPerUser)")
        }
        guard maxRunningPerUser >= 1, maxRunningPerUser <= 1_000_000 else {
            throw ValidationError("--max-running-per-user must be between 1 and 1000000; got \(maxRunningPerUser)")
        }
        guard maxBytesPerUser >= 65536, maxBytesPerUser <= 1 << 50 else {
            throw ValidationError("--max-bytes-per-user must be between 65536 and 2^50; got \(maxBytesPerUser)")
        }
        if let keepFinished, (DurationText.seconds(keepFinished) ?? 0) < 1 {
            throw ValidationError("--keep-finished must be \(DurationText.rule), at least 1s (leave it out to keep jobs until deleted); got \(keepFinished)")
        }
        guard Log.Level(name: logLevel) != nil else {
            throw ValidationError("--log-level must be one of: error, warning, info, debug; got \(logLevel)")
        }
    }

    func run() throws {
        Daemon.occupyStandardDescriptors()
        var environment: [String: String] = [:]
        var pointer = environ
        while let entry = pointer.pointee {
            let text = String(cString: entry)
            if let equals = text.firstIndex(of: "=") {
                environment[String(text[..<equals])] = String(text[text.index(after: equals)...])
            }
            pointer += 1
        }
        Log.configure(level: Log.Level(name: logLevel) ?? .info, journal: environment["JOURNAL_STREAM"] != nil)
        let configuration = DaemonConfiguration(
            socketPath: socket ?? DefaultPaths.socket(environment: environment),
            stateDirectory: stateDir ?? DefaultPaths.stateDirectory(environment: environment),
            maxLineBytes: maxLineBytes,
            maxJobs: maxJobs,
            maxConnections: maxConnections,
            maxConnectionsPerUser: maxConnectionsPerUser,
            maxPendingLineBytes: maxPendingLineBytes,
            maxQueuedBytes: maxQueuedBytes,
            adminGroup: adminGroup,
            limits: DiskLimits(maxLogBytes: maxLogBytes, maxStateBytes: maxStateBytes, maxJobsPerUser: maxJobsPerUser,
                              maxRunningPerUser: maxRunningPerUser, maxBytesPerUser: maxBytesPerUser),
            keepFinished: keepFinished.flatMap(DurationText.seconds))
        do {
            try Daemon(configuration: configuration).run(environment: environment)
        } catch {
            Log.error(error.message)
            throw ExitCode(error.exitCode)
        }
    }
}
