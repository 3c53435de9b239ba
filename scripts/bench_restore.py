"""The measurements behind scripts/bench-restore: a state directory of many finished jobs with big specs, and
what ltd costs to start on it. One job is run to its end by the ltd under test; the others are copies of its
directory, renamed (names of equal length, so the offsets in each checkpoint still hold)."""
import argparse, json, os, shutil, socket, subprocess, sys, tempfile, time

def spec(rows):
    xs = [float(i % 97) for i in range(rows)]
    ys = [3 * x + 2 + ((i * 7) % 11) / 10 for i, x in enumerate(xs)]
    return {"data": {"x": xs, "y": ys}, "init": {"kernel": 0.5, "bias": 0},
            "optimizer": {"name": "adam", "learning_rate": 0.01}, "epochs": 1, "batch_size": rows,
            "validation_mode": "fast"}

class Conn:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX); self.s.connect(path); self.buf = b""
    def request(self, obj):
        self.s.sendall((json.dumps(obj) + "\n").encode())
        while b"\n" not in self.buf:
            chunk = self.s.recv(1 << 20)
            if not chunk: raise EOFError
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n"); return json.loads(line)

def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"): return int(line.split()[1])

def launch(ltd, sock, state):
    t0 = time.perf_counter()
    p = subprocess.Popen([ltd, "--socket", sock, "--state-dir", state, "--log-level", "warning"])
    while True:
        try: c = Conn(sock); break
        except OSError: time.sleep(0.002)
    c.request({"op": "hello"})
    return p, c, time.perf_counter() - t0

def name(i): return "j%05d" % i

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ltd", required=True)
    ap.add_argument("--jobs", type=int, default=2000)
    ap.add_argument("--rows", type=int, default=10000)
    a = ap.parse_args()
    d = tempfile.mkdtemp(prefix="ltd-bench-restore-")
    sock, state = d + "/s.sock", d + "/state"
    try:
        p, c, _ = launch(a.ltd, sock, state)
        c.request({"op": "start", "job": name(0), "spec": spec(a.rows)})
        while c.request({"op": "status", "job": name(0)})["status"]["state"] != "finished": time.sleep(0.05)
        p.terminate(); p.wait()
        jobs = state + "/owners/%d/" % os.getuid()
        files = {f: open(jobs + name(0) + "/" + f, "rb").read() for f in os.listdir(jobs + name(0))}
        for i in range(1, a.jobs):
            os.mkdir(jobs + name(i), 0o700)
            for f, data in files.items():
                with open(jobs + name(i) + "/" + f, "wb") as out:
                    out.write(data.replace(b'"%s"' % name(0).encode(), b'"%s"' % name(i).encode()))
        size = sum(len(v) for v in files.values())
        print(f"# ltd restore benchmark on {os.cpu_count()} cores: {a.jobs} finished jobs of {a.rows} rows "
              f"({size / 1e6:.2f} MB of files each), {a.ltd}")
        p, c, ready = launch(a.ltd, sock, state)
        t0 = time.perf_counter()
        listed = c.request({"op": "list"})["jobs"]
        listing = time.perf_counter() - t0
        assert len(listed) == a.jobs, f"list gave {len(listed)} jobs"
        print(f"first reply (hello) {ready * 1000:.0f} ms after exec; list of all {len(listed)} jobs "
              f"{(ready + listing) * 1000:.0f} ms after exec")
        print(f"RSS with every job restored: {rss_kib(p.pid) / 1024:.1f} MiB")
        p.terminate(); p.wait()
    finally:
        shutil.rmtree(d, ignore_errors=True)

if __name__ == "__main__":
    main()
