"""The measurements behind scripts/bench-latency: step-to-watcher latency and `list`/`status` round trips while 30 paced
jobs run, each with 10 watchers.

How the latency is measured (the daemon puts no emit time in its events):
* **When a step leaves the job.** A paced job writes each step to its log (`events.ndjson`) right after computing it,
  before handing the same bytes to the loop (docs/DAEMON.md, "An event's path"). A *stamper* process, run at real-time
  priority (SCHED_FIFO, so it wakes at once on either core), waits on inotify for every job's log and stamps each
  write with CLOCK_MONOTONIC and the file's size after it. A step's write time is the first stamp whose size covers
  the step's line (its end offset, read from the log afterwards). The stamper can only be late, never early, so the
  latencies below can only be too small by its wake-up delay (tens of µs), never too large because of it.
* **When a watcher has it.** `ltctl tail` (text) and `ltctl tail --json` write to pipes read by this harness, which
  stamps each read (text lines are matched to their step by the iteration they print); the Python client stamps each
  event as `Subscription.__next__` returns it, in its own process; one raw-socket reference subscriber per job (an
  11th subscriber, in its own process, at real-time priority like the stamper) stamps each step as it is read, which
  separates the daemon's part from the watchers' own. `ltctl watch` runs in a pseudo-terminal as load only: it redraws at most ten times a second by
  design, so its screen lags a step by up to 100 ms whatever the daemon does.
All stamps are CLOCK_MONOTONIC (Python's time.monotonic_ns), one clock for every process. The harness's stamping loop
does nothing else while the jobs run: jobs are resumed from another thread, and CPU times come from wait4 when each
process is reaped (an earlier version resumed in this loop and walked /proc every 5 s, and measured itself: the
first 0.1 s and every fifth second showed 15–120 ms "latencies" that were the harness not reading).
"""
import argparse, ctypes, ctypes.util, fcntl, json, os, pty, re, resource, selectors, signal
import struct, subprocess, sys, tempfile, termios, threading, time
from bench_daemon import Conn, cpu_ticks, spec   # the same socket connection (this directory is on sys.path)

HERE = os.path.dirname(os.path.abspath(__file__))
SEQ = re.compile(rb'"seq":(\d+)')


def realtime():
    """SCHED_FIFO for this process if allowed (root), else the highest nice we may take; says which."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10)); return "SCHED_FIFO"
    except (PermissionError, AttributeError, OSError):
        try: os.nice(-10); return "nice -10"
        except OSError: return "normal priority"


def role_stamper(a):
    """inotify on every log; one (job index, size after the write, time) per write. Writes them out at SIGTERM."""
    how = realtime()
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    ino = libc.inotify_init1(0)
    logs = a.logs.split(",")
    wds = {}; fds = {}
    for i, log in enumerate(logs):
        wd = libc.inotify_add_watch(ino, log.encode(), 0x2)  # IN_MODIFY
        wds[wd] = i; fds[i] = os.open(log, os.O_RDONLY)
    stamps = []
    class Stop(Exception): pass
    def stop(*_): raise Stop()
    signal.signal(signal.SIGTERM, stop)
    print("ready", flush=True)
    while True:
        try: data = os.read(ino, 65536)
        except Stop: break
        now = time.monotonic_ns()
        pos = 0; seen = set()
        while pos < len(data):
            wd, _mask, _cookie, length = struct.unpack_from("iIII", data, pos); pos += 16 + length
            i = wds.get(wd)
            if i is not None and i not in seen:
                seen.add(i); stamps.append((i, os.fstat(fds[i]).st_size, now))
    with open(a.out, "w") as f: json.dump({"priority": how, "stamps": stamps}, f)


def role_reference(a):
    """One raw socket subscriber per job: (job index, seq, time) per step line read. At real-time priority, like the
    stamper, so that what it measures is the daemon's part (log write → the bytes are on a socket), not its own wait for
    a CPU among the watchers."""
    realtime()
    jobs = a.jobs_list.split(",")
    sel = selectors.DefaultSelector(); conns = []
    for i, j in enumerate(jobs):
        c = Conn(a.socket); c.send({"op": "subscribe", "job": j}); c.line(); c.s.setblocking(False)
        sel.register(c.s, selectors.EVENT_READ, (i, c)); conns.append(c)
    print("ready", flush=True)
    got = []; open_ = len(conns)
    while open_:
        for key, _ in sel.select():
            i, c = key.data
            data = c.s.recv(1 << 16); now = time.monotonic_ns()
            if not data: sel.unregister(c.s); open_ -= 1; continue
            c.buf += data
            *lines, c.buf = c.buf.split(b"\n")
            for line in lines:
                if line.startswith(b'{"type":"step"'): got.append((i, int(SEQ.search(line).group(1)), now))
                elif line.startswith(b'{"type":"end"'): sel.unregister(c.s); open_ -= 1
    with open(a.out, "w") as f: json.dump(got, f)


def role_client(a):
    """The Python client, as a user's script would use it: (seq, time) per step event."""
    sys.path.insert(0, os.path.join(HERE, "..", "clients", "python"))
    from ltd_client import Client
    got = []
    with Client(a.socket) as client:
        sub = client.tail(a.job)
        print("ready", flush=True)
        for event in sub:
            if event["type"] == "step": got.append((event["seq"], time.monotonic_ns()))
    with open(a.out, "w") as f: json.dump(got, f)


def reap(p, timeout):
    """Waits for child `p` (killing it after `timeout` s) and returns its user + system seconds, from wait4."""
    if p.returncode is not None: return None   # already reaped (poll): its usage is gone
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(p.pid, os.WNOHANG)
        if pid == p.pid:
            p.returncode = os.waitstatus_to_exitcode(status)
            return usage.ru_utime + usage.ru_stime
        if time.monotonic() > deadline: p.kill(); deadline = float("inf")
        time.sleep(0.005)


def percentile(sorted_values, q):
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * q))]


def summary(values_ns):
    v = sorted(values_ns)
    return (f"{len(v):7d} samples  p50 {percentile(v, .5) / 1e3:8.0f} µs  p90 {percentile(v, .9) / 1e3:8.0f} µs  "
            f"p99 {percentile(v, .99) / 1e3:8.0f} µs  max {v[-1] / 1e3:8.0f} µs")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--role", default="main")
    ap.add_argument("--ltd"); ap.add_argument("--ltctl"); ap.add_argument("--socket"); ap.add_argument("--job")
    ap.add_argument("--logs"); ap.add_argument("--jobs-list"); ap.add_argument("--out")
    ap.add_argument("--jobs", type=int, default=30)
    ap.add_argument("--watchers", type=int, default=10, help="per job: 3 tail, 2 tail --json, 2 watch, 3 Python per 10")
    ap.add_argument("--pace-ms", type=int, default=10)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--spread-s", type=float, default=None,
                    help="resume the jobs evenly over this many seconds (default: one pace interval, the worst case: "
                         "all jobs then also end within it, and all their watchers exit at once)")
    ap.add_argument("--timeline", help="write every (watcher kind, write time ns, latency ns) to this JSON file")
    a = ap.parse_args()
    if a.role == "stamper": return role_stamper(a)
    if a.role == "reference": return role_reference(a)
    if a.role == "client": return role_client(a)

    children = []
    try:
        run(a, children)
    finally:
        for p in children:
            if p.poll() is None: p.kill()


def run(a, children):
    d = tempfile.mkdtemp(prefix="ltd-latency-")
    sock = d + "/s.sock"
    daemon = subprocess.Popen([a.ltd, "--socket", sock, "--state-dir", d + "/state", "--log-level", "warning",
                               # One user plays the whole class here, so the per-user caps are a class's
                               "--max-running-per-user", str(max(a.jobs, 1)),
                               "--max-connections-per-user", str(a.jobs * (a.watchers + 1) + 64)])
    children.append(daemon)
    for _ in range(200):
        try: Conn(sock); break
        except OSError: time.sleep(0.05)
    ctl = Conn(sock)
    steps = int(a.seconds * 1000 / a.pace_ms); epochs = max(1, steps // 12)
    names = [f"class-{i:02d}" for i in range(a.jobs)]
    for n in names:
        r = ctl.request({"op": "start", "job": n, "spec": spec(12, epochs, 1, "exact", pace=a.pace_ms, paused=True)})
        assert r["type"] == "started", r
    logs = [f"{d}/state/owners/{os.getuid()}/{n}/events.ndjson" for n in names]   # STATE/owners/UID/NAME
    deadline = time.monotonic() + 30
    for log in logs:
        while not os.path.exists(log):
            if time.monotonic() > deadline: sys.exit(f"bench-latency: no log at {log} after 30 s")
            time.sleep(0.01)
    me = [sys.executable, os.path.abspath(__file__), "--socket", sock]
    stamper = subprocess.Popen(me + ["--role", "stamper", "--logs", ",".join(logs), "--out", d + "/stamps.json"],
                               stdout=subprocess.PIPE)
    reference = subprocess.Popen(me + ["--role", "reference", "--jobs-list", ",".join(names), "--out", d + "/ref.json"],
                                 stdout=subprocess.PIPE)
    children += [stamper, reference]
    assert stamper.stdout.readline() == b"ready\n" and reference.stdout.readline() == b"ready\n"

    # The watchers. Per 10: 3 `tail` (text), 2 `tail --json`, 2 `watch` (pty), 3 Python clients.
    kinds = (["tail", "tail", "tail", "json", "json", "watch", "watch", "python", "python", "python"] * 10)[:a.watchers]
    env = dict(os.environ, TERM="xterm-256color", NO_COLOR="1")
    readers = {}   # fd -> [job index, kind, process, pending bytes, [(key, t)]]
    clients = []   # (job index, process, out path)
    watches = []
    for i, n in enumerate(names):
        for k, kind in enumerate(kinds):
            if kind in ("tail", "json"):
                args = [a.ltctl, "tail", n, "--socket", sock, "--wide"] + (["--json"] if kind == "json" else [])
                p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
                readers[p.stdout.fileno()] = [i, kind, p, b"", []]
                children.append(p)
            elif kind == "watch":
                master, slave = pty.openpty()
                fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
                p = subprocess.Popen([a.ltctl, "watch", n, "--socket", sock], stdin=slave, stdout=slave, stderr=slave,
                                     env=env, start_new_session=True)
                os.close(slave)
                readers[master] = [i, kind, p, b"", []]; watches.append((master, p)); children.append(p)
            else:
                out = f"{d}/client-{i}-{k}.json"
                p = subprocess.Popen(me + ["--role", "client", "--job", n, "--out", out], stdout=subprocess.PIPE)
                clients.append((i, p, out))
                children.append(p)
    for _, p, _ in clients: assert p.stdout.readline() == b"ready\n"
    sel = selectors.DefaultSelector()
    for fd in readers: os.set_blocking(fd, False); sel.register(fd, selectors.EVENT_READ)
    waiting = set(readers)
    deadline = time.monotonic() + 60
    while waiting and time.monotonic() < deadline:   # every watcher has shown the paused job
        for key, _ in sel.select(1):
            try: data = os.read(key.fd, 1 << 16)
            except OSError: data = b""
            r = readers[key.fd]; r[3] += data
            # a watcher is ready when it shows its job (a `watch` that failed would print an error instead)
            if names[r[0]].encode() in r[3]: waiting.discard(key.fd)
    assert not waiting, f"{len(waiting)} watchers showed nothing"
    for r in readers.values(): r[3] = b""
    load_before = os.getloadavg()

    # `list` and `status` round trips, from their own connection, every 20 ms while the jobs run.
    rtts = {"list": [], "status": []}; stop = threading.Event(); lags = []
    def prober():
        c = Conn(sock); k = 0
        while not stop.is_set():
            op = {"op": "list"} if k % 2 == 0 else {"op": "status", "job": names[(k // 2) % len(names)]}
            t0 = time.monotonic_ns(); r = c.request(op); rtts[op["op"]].append(time.monotonic_ns() - t0)
            assert r["type"] in ("jobs", "status"), r
            k += 1; time.sleep(0.02)
            if k % 40 == 0:   # about once a second: how late the daemon's own timer last fired
                lags.append((time.monotonic(), (c.request({"op": "stats"}).get("loop_lag_us") or {}).get("last", 0)))
    def cpu_seconds(pid):   # user + system time of a process, seconds
        return sum(cpu_ticks(pid)) / os.sysconf("SC_CLK_TCK")
    # Each process's CPU while the jobs run: read now, and again when it is reaped (wait4's rusage), so this loop,
    # which stamps the `tail` reads, never stops to walk /proc (doing that every 5 s showed up as 15 ms spikes).
    watchers = [(r[1], r[2]) for r in readers.values()] + [("python", p) for _, p, _ in clients] \
        + [("harness: stamper", stamper), ("harness: reference", reference)]
    cpu_at_start = {}
    for _, p in watchers:
        try: cpu_at_start[p.pid] = cpu_seconds(p.pid)
        except (OSError, IndexError): pass
    own = resource.getrusage(resource.RUSAGE_SELF); own_at_start = own.ru_utime + own.ru_stime
    # Resume the jobs spread over one pace interval (or --spread-s), from a thread of its own, so this one is
    # already reading (and stamping) the `tail` pipes when the first job's first step arrives.
    spread = a.pace_ms / 1000 if a.spread_s is None else a.spread_s
    def resumer():
        for n in names:
            ctl.request({"op": "resume", "job": n}); time.sleep(spread / len(names))
    resuming = threading.Thread(target=resumer); resuming.start()
    th = threading.Thread(target=prober); th.start()
    daemon_cpu = cpu_seconds(daemon.pid)
    t_start = time.monotonic()
    open_ = {fd for fd, r in readers.items() if r[1] != "watch"}
    loads = []
    while open_ or (not readers and reference.poll() is None):   # with --watchers 0, until the reference is done
        for key, _ in sel.select(1):
            r = readers[key.fd]
            try: data = os.read(key.fd, 1 << 16)
            except OSError: data = b""
            now = time.monotonic_ns()
            if not data: sel.unregister(key.fd); open_.discard(key.fd); continue
            if r[1] == "watch": continue
            r[3] += data
            *lines, r[3] = r[3].split(b"\n")
            for line in lines:
                if r[1] == "json":
                    if line.startswith(b'{"type":"step"'): r[4].append((int(SEQ.search(line).group(1)), now))
                else:
                    fields = line.split()
                    # a step row: "epoch/epochs  step/steps  iteration  rows ..."
                    if len(fields) > 2 and b"/" in fields[0] and fields[2].isdigit(): r[4].append((int(fields[2]), now))
        if time.monotonic() - t_start > len(loads) * 5: loads.append(os.getloadavg()[0])
        if time.monotonic() - t_start > a.seconds * 4 + 120: break
    wall = time.monotonic() - t_start
    daemon_cpu = cpu_seconds(daemon.pid) - daemon_cpu
    stop.set(); th.join(); resuming.join()
    own = resource.getrusage(resource.RUSAGE_SELF); watcher_cpu = {os.getpid(): ("harness: main", own.ru_utime + own.ru_stime - own_at_start)}
    for master, p in watches:
        p.terminate()
    stamper.send_signal(signal.SIGTERM)
    for kind, p in watchers:   # tails have ended, clients and the reference are ending, watches and stamper were told
        seconds = reap(p, timeout=60)
        if seconds is not None: watcher_cpu[p.pid] = (kind, seconds - cpu_at_start.get(p.pid, 0))
    loads.append(os.getloadavg()[0])
    rss = int([l for l in open(f"/proc/{daemon.pid}/status") if l.startswith("VmRSS")][0].split()[1]) // 1024

    # Each job's log: end offset of every step line, and iteration -> seq.
    step_end = []; iter_seq = []
    for log in logs:
        ends = {}; its = {}; off = 0
        with open(log, "rb") as f:
            for line in f:
                off += len(line)
                if line.startswith(b'{"type":"step"'):
                    seq = int(SEQ.search(line).group(1)); ends[seq] = off
                    its[int(re.search(rb'"iteration":(\d+)', line).group(1))] = seq
        step_end.append(ends); iter_seq.append(its)
    st = json.load(open(d + "/stamps.json"))
    by_job = [[] for _ in names]
    for i, size, t in st["stamps"]: by_job[i].append((size, t))
    for s in by_job: s.sort(key=lambda x: x[1])
    def written(i, seq):
        s = by_job[i]; end = step_end[i].get(seq)
        if end is None: return None
        # sizes grow with time; the first stamp whose size covers the line
        lo, hi = 0, len(s)
        while lo < hi:
            mid = (lo + hi) // 2
            if s[mid][0] >= end: hi = mid
            else: lo = mid + 1
        return s[lo][1] if lo < len(s) else None
    lat = {"reference (raw socket)": [], "ltctl tail --json": [], "ltctl tail": [], "Python client": []}
    missing = 0; timeline = []
    def add(kind, i, seq, t):
        nonlocal missing
        w = written(i, seq)
        if w is None: missing += 1
        else: lat[kind].append(t - w); timeline.append((kind, w, t - w))
    for i, seq, t in json.load(open(d + "/ref.json")): add("reference (raw socket)", i, seq, t)
    counts = {}
    for r in readers.values():
        i, kind = r[0], r[1]
        if kind == "watch": continue
        name = "ltctl tail --json" if kind == "json" else "ltctl tail"
        for key, t in r[4]:
            seq = key if kind == "json" else iter_seq[i].get(key)
            if seq is not None: add(name, i, seq, t)
        counts[name] = counts.get(name, 0) + len(r[4])
    for i, p, out in clients:
        for seq, t in json.load(open(out)): add("Python client", i, seq, t)
    total_steps = sum(len(e) for e in step_end)

    print(f"# ltd latency under load: {a.jobs} jobs × {a.watchers} watchers ({', '.join(sorted(set(kinds)))}) "
          f"+ 1 raw reference subscriber each; pace {a.pace_ms} ms, {epochs * 12} steps per job, resumed over {spread:g} s; "
          f"{os.cpu_count()} cores; stamper at {st['priority']}")
    print(f"# {total_steps} steps in {wall:.1f} s = {total_steps / wall:,.0f} steps/s across jobs; "
          f"{total_steps / wall / (a.jobs * 1000 / a.pace_ms):.2f} of the pace; load average before {load_before[0]:.2f}, "
          f"during {min(loads):.2f}–{max(loads):.2f}; ltd used {daemon_cpu / wall:.2f} of a core; RSS {rss} MiB")
    print("step → watcher latency (log write → watcher has the line):")
    every = []
    for kind, v in lat.items():
        if v: print(f"  {kind:24s} {summary(v)}")
        if kind != "reference (raw socket)": every += v
    if every: print(f"  {'all watchers':24s} {summary(every)}")
    # The first and last second hold the jobs' resume and end bursts (all 30 at once, and the watchers exiting).
    if timeline:
        first = min(w for _, w, _ in timeline) + 1e9; last = max(w for _, w, _ in timeline) - 1e9
        steady = [l for k, w, l in timeline if first <= w <= last and not k.startswith("reference")]
        if steady: print(f"  {'all, steady (±1 s cut)':24s} {summary(steady)}")
    if missing: print(f"  ({missing} receptions without a write stamp, left out)")
    if a.timeline: json.dump(sorted(timeline, key=lambda x: x[1]), open(a.timeline, "w"))
    for op, v in rtts.items():
        print(f"`{op}` round trip:          {summary(v)}")
    by_kind = {}
    for kind, seconds in watcher_cpu.values():
        n, total = by_kind.get(kind, (0, 0.0)); by_kind[kind] = (n + 1, total + seconds)
    if by_kind:
        print("watchers' CPU while the jobs ran: " + "; ".join(
            f"{kind} {n} × {total / n / wall:.3f} = {total / wall:.2f} core" for kind, (n, total) in sorted(by_kind.items())))
    lag = ctl.request({"op": "stats"}).get("loop_lag_us") or {}
    if lag:
        during = [us for t, us in lags if t >= t_start]
        print(f"ltd's loop lag (its 1 s housekeeping timer, late by): while the jobs ran max {max(during, default=0) / 1000:.1f} ms "
              f"({len(during)} samples), since start {lag.get('max', 0) / 1000:.1f} ms")
    ctl.s.close()
    daemon.send_signal(signal.SIGTERM); daemon.wait()
    subprocess.run(["rm", "-rf", d])


if __name__ == "__main__":
    main()
