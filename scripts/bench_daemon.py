"""The measurements behind scripts/bench-daemon. Readers are raw sockets read in 1 MiB chunks, counting lines,
so the reader is never the bottleneck being measured."""
import argparse, json, os, selectors, signal, socket, statistics, subprocess, sys, tempfile, time

def spec(rows, epochs, batch, validation="exact", pace=0, paused=False):
    xs = [float(i % 97) for i in range(rows)]
    ys = [3 * x + 2 + ((i * 7) % 11) / 10 for i, x in enumerate(xs)]
    return {"data": {"x": xs, "y": ys}, "init": {"kernel": 0.5, "bias": 0},
            "optimizer": {"name": "rmsprop", "learning_rate": 0.05}, "epochs": epochs, "batch_size": batch,
            "validation_mode": validation, "pace_ms": pace, "paused": paused}

class Conn:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX); self.s.connect(path); self.buf = b""
    def send(self, obj): self.s.sendall((json.dumps(obj) + "\n").encode())
    def line(self):
        while b"\n" not in self.buf:
            chunk = self.s.recv(1 << 20)
            if not chunk: raise EOFError
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n"); return line
    def request(self, obj): self.send(obj); return json.loads(self.line())

def drain(conns):
    """Reads every connection until it has seen an `end` event; returns the line count of each."""
    sel = selectors.DefaultSelector(); counts = {}; tails = {}
    for c in conns:
        c.s.setblocking(False); sel.register(c.s, selectors.EVENT_READ, c)
        counts[c] = c.buf.count(b"\n"); tails[c] = c.buf[-4096:]
    open_ = len(conns)
    while open_:
        for key, _ in sel.select():
            c = key.data
            data = c.s.recv(1 << 20)
            if not data: sel.unregister(c.s); open_ -= 1; continue
            counts[c] += data.count(b"\n"); tails[c] = (tails[c] + data)[-4096:]
            if b'{"type":"end"' in tails[c] and tails[c].endswith(b"\n"):
                sel.unregister(c.s); open_ -= 1
    return [counts[c] for c in conns]

def cpu_ticks(pid):
    """A process's user and system time, in clock ticks."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(fields[11]), int(fields[12])

def cpu_ns_per_step(pid, before, steps):
    """ltd's CPU time (user + system) since `before`, per step: unlike steps/s, hardly moved by other load."""
    after = cpu_ticks(pid)
    return (sum(after) - sum(before)) * 1e9 / os.sysconf("SC_CLK_TCK") / steps

def pile_up(ctl, sock, pid, jobs, epochs):
    """Jobs one after another while their logs pile up (all kept): does a later job run slower than the first?"""
    def meminfo(key):
        return next(int(l.split()[1]) // 1024 for l in open("/proc/meminfo") if l.startswith(key + ":"))
    tick_ms = 1000 / os.sysconf("SC_CLK_TCK")
    for j in range(jobs):
        name = f"pile-{j}"
        (u0, s0), dirty0, t0 = cpu_ticks(pid), meminfo("Dirty"), time.perf_counter()
        r = ctl.request({"op": "start", "job": name, "spec": spec(12, epochs, 1, "exact")})
        assert r["type"] == "started", r
        c = Conn(sock); c.send({"op": "subscribe", "job": name}); drain([c])
        dt = time.perf_counter() - t0
        time.sleep(0.3)   # the job thread's last checkpoint
        u1, s1 = cpu_ticks(pid)
        print(f"pile-up job {j + 1}: {epochs * 12 / dt:,.0f} steps/s; ltd CPU user {(u1 - u0) * tick_ms:.0f} ms, "
              f"system {(s1 - s0) * tick_ms:.0f} ms = {((u1 - u0) + (s1 - s0)) * tick_ms * 1e6 / (epochs * 12):.0f} ns/step; "
              f"Dirty {dirty0} → {meminfo('Dirty')} MiB; load {os.getloadavg()[0]:.1f}", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ltd", required=True)
    ap.add_argument("--ltctl")
    ap.add_argument("--steps", type=int, default=1_200_000)
    ap.add_argument("--subscribers", type=int, default=100)
    ap.add_argument("--pile-up", type=int, metavar="JOBS",
                    help="only run JOBS jobs of --steps steps one after another, each read by a raw subscriber, and "
                         "print per job: steps/s, the daemon's CPU time per step and the system's dirty page cache")
    a = ap.parse_args()
    d = tempfile.mkdtemp(prefix="ltd-bench-")
    sock = d + "/s.sock"
    # The runs keep gigabytes of logs: lift the per-user and whole-state disk quotas (defaults 2 and 10 GiB).
    p = subprocess.Popen([a.ltd, "--socket", sock, "--state-dir", d + "/state", "--log-level", "warning",
                          "--max-bytes-per-user", str(1 << 40), "--max-state-bytes", str(1 << 40)])
    try: run(a, d, sock, p)
    finally:
        if p.poll() is None: p.kill()
        subprocess.run(["rm", "-rf", d])


def run(a, d, sock, p):
    for _ in range(200):
        try: Conn(sock); break
        except OSError: time.sleep(0.05)
    ctl = Conn(sock)
    epochs = a.steps // 12
    print(f"# ltd end-to-end benchmark on {os.cpu_count()} cores; 12 rows, batch 1, rmsprop, {epochs * 12} steps")
    if a.pile_up:
        pile_up(ctl, sock, p.pid, a.pile_up, epochs)
        p.send_signal(signal.SIGTERM); p.wait(); subprocess.run(["rm", "-rf", d]); return

    for validation in ["exact", "fast"]:
        name = "thr-" + validation
        t0 = time.perf_counter(); cpu0 = cpu_ticks(p.pid)
        r = ctl.request({"op": "start", "job": name, "spec": spec(12, epochs, 1, validation)})
        assert r["type"] == "started", r
        c = Conn(sock); c.send({"op": "subscribe", "job": name})
        n = drain([c])[0] - 1
        dt = time.perf_counter() - t0
        time.sleep(0.3)   # the job thread's last checkpoint
        print(f"throughput ({validation} validation): {n} events in {dt:.3f} s = {epochs * 12 / dt:,.0f} steps/s, "
              f"{n / dt:,.0f} events/s start→last event received; ltd CPU {cpu_ns_per_step(p.pid, cpu0, epochs * 12):.0f} ns/step")

    # A reader that joins after the end reads the whole log from the file (behind the in-memory tail).
    t0 = time.perf_counter()
    c = Conn(sock); c.send({"op": "subscribe", "job": "thr-fast"})
    n = drain([c])[0] - 1
    dt = time.perf_counter() - t0
    print(f"catch-up from the file: a reader joining after the end read {n} events in {dt:.3f} s = {n / dt:,.0f} events/s")

    if a.ltctl:
        name = "thr-ltctl"
        t0 = time.perf_counter(); cpu0 = cpu_ticks(p.pid)
        r = ctl.request({"op": "start", "job": name, "spec": spec(12, epochs, 1, "exact")})
        assert r["type"] == "started", r
        with open(d + "/tail.ndjson", "wb") as sink:
            subprocess.run([a.ltctl, "tail", name, "--json", "--socket", sock], stdout=sink, check=True)
        dt = time.perf_counter() - t0
        time.sleep(0.3)
        cpu = cpu_ns_per_step(p.pid, cpu0, epochs * 12)
        n = 0; last = b""
        with open(d + "/tail.ndjson", "rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""): n += block.count(b"\n"); last = (last + block)[-4096:]
        assert last.rstrip(b"\n").rsplit(b"\n", 1)[-1].startswith(b'{"type":"end"'), last[-200:]
        os.remove(d + "/tail.ndjson")
        print(f"throughput, reader `ltctl tail --json` (exact validation): {n} events in {dt:.3f} s = "
              f"{epochs * 12 / dt:,.0f} steps/s start→last event printed; ltd CPU {cpu:.0f} ns/step")

    # `list` while two jobs run flat out: the loop never waits for training.
    import threading
    for j in ["busy-1", "busy-2"]:
        ctl.request({"op": "start", "job": j, "spec": spec(12, epochs, 1, "fast")})
    rtts = []; stop = threading.Event()
    def lister():
        c = Conn(sock)
        while not stop.is_set():
            t0 = time.perf_counter(); r = c.request({"op": "list"}); rtts.append(time.perf_counter() - t0)
            assert r["type"] == "jobs"
            time.sleep(0.005)
    th = threading.Thread(target=lister); th.start()
    while ctl.request({"op": "status", "job": "busy-2"})["status"]["state"] == "running": time.sleep(0.05)
    stop.set(); th.join(); rtts.sort()
    print(f"list round trip while 2 jobs run flat out ({len(rtts)} requests): median {statistics.median(rtts) * 1e6:.0f} µs, "
          f"p99 {rtts[int(len(rtts) * 0.99)] * 1e6:.0f} µs, max {rtts[-1] * 1e6:.0f} µs")

    steps = min(a.steps, 300_000); ep = steps // 12
    timings = {}
    for subs in [0, a.subscribers]:
        name = f"fan-{subs}"
        r = ctl.request({"op": "start", "job": name, "spec": spec(12, ep, 1, "fast", paused=True)})
        conns = []
        for _ in range(subs):
            c = Conn(sock); c.send({"op": "subscribe", "job": name}); conns.append(c)
        for c in conns: c.line()
        t0 = time.perf_counter()
        ctl.request({"op": "resume", "job": name})
        if subs:
            counts = drain(conns)
            assert len(set(counts)) == 1, counts
        while True:
            st = ctl.request({"op": "status", "job": name})["status"]
            if st["state"] == "finished": break
            time.sleep(0.002)
        delivered = time.perf_counter() - t0
        # The job's own end: when its log was last written (the end event), on the same clock as t0.
        log = f"{d}/state/owners/{os.getuid()}/{name}/events.ndjson"
        job_end = os.stat(log).st_mtime - (time.time() - time.perf_counter())
        timings[subs] = job_end - t0
        print(f"fan-out: {subs:3d} subscribers: the {ep * 12}-step job ran in {timings[subs]:.3f} s; "
              f"every subscriber had every event after {delivered:.3f} s")
    print(f"fan-out: the job with {a.subscribers} subscribers ran {timings[a.subscribers] / timings[0]:.2f}x as long as with none")

    # Paced latency: the job writes each step to its log right after computing it (pace > 0 flushes every step);
    # inotify stamps that write, the subscriber stamps the read of the same bytes.
    import ctypes, ctypes.util
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    name = "paced"
    ctl.request({"op": "start", "job": name, "spec": spec(12, 25, 1, "exact", pace=10, paused=True)})
    log = f"{d}/state/owners/{os.getuid()}/{name}/events.ndjson"
    ino = libc.inotify_init1(os.O_NONBLOCK)
    libc.inotify_add_watch(ino, log.encode(), 0x2)  # IN_MODIFY
    w = Conn(sock); w.send({"op": "subscribe", "job": name}); w.line()
    w.s.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(ino, selectors.EVENT_READ, "log"); sel.register(w.s, selectors.EVENT_READ, "sock")
    # Bytes already buffered by Conn (the start and state events) count as received before the steps.
    writes = []; received = 0; pending = w.buf; lat = []; done = False
    ctl.request({"op": "resume", "job": name})
    while not done:
        for key, _ in sel.select(5):
            now = time.perf_counter()
            if key.data == "log":
                os.read(ino, 65536); writes.append((os.stat(log).st_size, now))
            else:
                data = w.s.recv(1 << 20)
                if not data: done = True; break
                pending += data
                while b"\n" in pending:
                    line, _, pending = pending.partition(b"\n")
                    received += len(line) + 1
                    if line.startswith(b'{"type":"step"'):
                        stamp = next((t for size, t in writes if size >= received), None)
                        if stamp is not None: lat.append(now - stamp)
                    if line.startswith(b'{"type":"end"'): done = True
    lat.sort()
    print(f"latency, paced job (pace_ms 10, {len(lat)} steps), log write → subscriber read: "
          f"median {statistics.median(lat) * 1e6:.0f} µs, p90 {lat[int(len(lat) * 0.9)] * 1e6:.0f} µs, max {lat[-1] * 1e6:.0f} µs")

    name = "lat"
    ctl.request({"op": "start", "job": name, "spec": spec(12, 100, 1, "exact", paused=True)})
    w = Conn(sock); w.send({"op": "subscribe", "job": name}); w.line()
    while not w.line().startswith(b'{"type":"state"'): pass
    lat = []
    for i in range(300):
        t0 = time.perf_counter()
        ctl.send({"op": "step", "job": name})
        while True:
            line = w.line()
            if line.startswith(b'{"type":"step"'): break
        lat.append(time.perf_counter() - t0)
        ctl.line()
    lat.sort()
    print(f"latency, `step` request on a paused job → its step event read by a subscriber (includes waking the job and computing): "
          f"median {statistics.median(lat) * 1e6:.0f} µs, p90 {lat[int(len(lat) * 0.9)] * 1e6:.0f} µs, max {lat[-1] * 1e6:.0f} µs")
    rss = [l for l in open(f"/proc/{p.pid}/status") if l.startswith("VmRSS")][0].split()[1]
    print(f"daemon RSS at the end: {int(rss) // 1024} MiB")
    p.send_signal(signal.SIGTERM); p.wait()
    subprocess.run(["rm", "-rf", d])

if __name__ == "__main__":
    main()
