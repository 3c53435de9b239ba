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

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ltd", required=True)
    ap.add_argument("--steps", type=int, default=1_200_000)
    ap.add_argument("--subscribers", type=int, default=100)
    a = ap.parse_args()
    d = tempfile.mkdtemp(prefix="ltd-bench-")
    sock = d + "/s.sock"
    p = subprocess.Popen([a.ltd, "--socket", sock, "--state-dir", d + "/state", "--log-level", "warning"])
    for _ in range(200):
        try: Conn(sock); break
        except OSError: time.sleep(0.05)
    ctl = Conn(sock)
    epochs = a.steps // 12
    print(f"# ltd end-to-end benchmark on {os.cpu_count()} cores; 12 rows, batch 1, rmsprop, {epochs * 12} steps")

    for validation in ["exact", "fast"]:
        name = "thr-" + validation
        t0 = time.perf_counter()
        r = ctl.request({"op": "start", "job": name, "spec": spec(12, epochs, 1, validation)})
        assert r["type"] == "started", r
        c = Conn(sock); c.send({"op": "subscribe", "job": name})
        n = drain([c])[0] - 1
        dt = time.perf_counter() - t0
        print(f"throughput ({validation} validation): {n} events in {dt:.3f} s = {epochs * 12 / dt:,.0f} steps/s, "
              f"{n / dt:,.0f} events/s start→last event received")

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
        timings[subs] = time.perf_counter() - t0
        print(f"fan-out: {subs} subscribers: job of {ep * 12} steps finished (and every subscriber had every event) in {timings[subs]:.3f} s")
    print(f"fan-out slowdown with {a.subscribers} subscribers: {timings[a.subscribers] / timings[0]:.2f}x")

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
    print(f"latency, step request → step event read by a subscriber (upper bound on compute→read): "
          f"median {statistics.median(lat) * 1e6:.0f} µs, p90 {lat[int(len(lat) * 0.9)] * 1e6:.0f} µs, max {lat[-1] * 1e6:.0f} µs")
    rss = [l for l in open(f"/proc/{p.pid}/status") if l.startswith("VmRSS")][0].split()[1]
    print(f"daemon RSS at the end: {int(rss) // 1024} MiB")
    p.send_signal(signal.SIGTERM); p.wait()
    subprocess.run(["rm", "-rf", d])

main()
