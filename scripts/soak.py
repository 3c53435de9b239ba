#!/usr/bin/env python3
"""A soak of ltd under careless and hostile clients, bounded in time (docs/RELIABILITY.md).

    python3 scripts/soak.py --seconds 600        # the recorded run; --seconds 60 for a quick one

Starts a private release ltd (building it if needed) and, for the given time: 20 paced jobs; 200 subscribers that
join, leave cleanly or vanish mid-stream at random, each following one job; garbage senders (bytes that are not JSON,
JSON that is not a request, unfinished lines, a flood of unread lists); a `list` every 50 ms whose latency is
recorded; and two `kill -9`s of the daemon, each followed by a restart on the same state directory. A follower whose
connection drops resubscribes from the seq after the last one it saw.

At the end every follower that saw its job's `end` has its stream compared, event by event, with the job's log
(0 lost, 0 duplicated), and the script prints peak RSS, peak and final fds (which must be back to the baseline once
all clients are gone), and p50/p99 `list` latency. Exits 1 on any mismatch, a daemon that dies unasked, or fds that
stay above the baseline.
"""
import argparse
import atexit
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
JOBS = 20
SUBSCRIBERS = 200


class Daemon:
    def __init__(self, binary, directory):
        self.binary, self.directory = binary, directory
        self.socket = os.path.join(directory, "ltd.sock")
        self.state = os.path.join(directory, "state")
        self.process = None
        self.lock = threading.Lock()
        self.expected_exit = False

    def start(self):
        stderr = open(os.path.join(self.directory, "ltd.log"), "a")
        # One uid plays every client here, so its per-user limits are raised to a class's: connections above the 200
        # subscribers plus the garbage senders, running jobs to all of them (the limits are tested in
        # HostileClientTests and QuotaTests).
        self.process = subprocess.Popen([self.binary, "--socket", self.socket, "--state-dir", self.state,
                                         "--max-connections-per-user", "400", "--max-running-per-user", str(JOBS)],
                                        stderr=stderr, stdin=subprocess.DEVNULL)
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                request(self.socket, {"op": "hello"})
                return
            except OSError:
                time.sleep(0.05)
        raise SystemExit("soak: ltd did not start; see " + os.path.join(self.directory, "ltd.log"))

    def kill9(self):
        with self.lock:
            self.expected_exit = True
            self.process.kill()
            self.process.wait()
            self.start()
            self.expected_exit = False

    def fds(self):
        try:
            return len(os.listdir(f"/proc/{self.process.pid}/fd"))
        except OSError:
            return 0

    def rss_kib(self):
        try:
            with open(f"/proc/{self.process.pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except OSError:
            pass
        return 0


def connect(path, timeout=10):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    return s


def request(path, message, timeout=10):
    with connect(path, timeout) as s:
        s.sendall((json.dumps(message) + "\n").encode())
        return json.loads(s.makefile("rb").readline())


def spec(steps, pace_ms):
    xs = [float(i % 13) for i in range(8)]
    ys = [3 * x + 2 + (i % 5) / 10 for i, x in enumerate(xs)]
    return {"data": {"x": xs, "y": ys}, "init": {"kernel": 0.5, "bias": 0},
            "optimizer": {"name": "adam", "learning_rate": 0.01}, "epochs": steps, "batch_size": 8,
            "pace_ms": pace_ms, "validation_mode": "fast"}


class Results:
    def __init__(self):
        self.lock = threading.Lock()
        self.streams = []          # (job, first seq, [lines]) of followers that saw `end`
        self.joined = self.left = self.vanished = self.reconnects = self.garbage = 0
        self.latencies = []
        self.errors = []

    def add(self, **counts):
        with self.lock:
            for key, value in counts.items():
                setattr(self, key, getattr(self, key) + value)


def subscriber(daemon, jobs, deadline, results, rng):
    while time.time() < deadline:
        job = rng.choice(jobs)
        mode = rng.random()
        start = 1 if rng.random() < 0.7 else rng.randint(1, 50)
        lines, expected, sock = [], start, None
        results.add(joined=1)
        try:
            while time.time() < deadline:
                if sock is None:
                    try:
                        sock = connect(daemon.socket)
                        sock.sendall((json.dumps({"op": "subscribe", "job": job, "from": expected}) + "\n").encode())
                        reader = sock.makefile("rb")
                        reply = json.loads(reader.readline())
                        if reply.get("type") != "subscribed":
                            results.errors.append(f"subscribe {job} from {expected}: {reply}")
                            break
                    except (OSError, ValueError):
                        if sock:
                            sock.close()
                        sock = None
                        results.add(reconnects=1)
                        time.sleep(0.1)
                        continue
                try:
                    line = reader.readline()
                except OSError:
                    line = b""
                if not line.endswith(b"\n"):   # the daemon went away (kill -9), maybe mid-line: resubscribe where we were
                    sock.close()
                    sock = None
                    results.add(reconnects=1)
                    continue
                event = json.loads(line)
                if event.get("seq") != expected:
                    results.errors.append(f"{job}: expected seq {expected}, got {event.get('seq')}")
                    break
                lines.append(line)
                expected += 1
                if event.get("type") == "end":
                    with results.lock:
                        results.streams.append((job, start, lines))
                    break
                if mode < 0.15 and len(lines) > rng.randint(1, 400):     # leaves cleanly
                    sock.sendall(b'{"op":"unsubscribe"}\n')
                    results.add(left=1)
                    break
                if mode < 0.3 and len(lines) > rng.randint(1, 400):      # vanishes with unread events queued
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    results.add(vanished=1)
                    break
        finally:
            if sock:
                sock.close()


GARBAGE = [b"\x00\xff\xfe garbage\n", b"[]\n", b"3\n", b'"x"\n', b"{\"op\":\"start\"}\n", b"{" * 100 + b"\n",
           b'{"op":"subscribe","job":"nope"}\n', b'{"op":"start","job":"../x","spec":{}}\n', b"no newline at all"]


def garbage_sender(daemon, deadline, results, rng):
    while time.time() < deadline:
        try:
            with connect(daemon.socket, timeout=2) as s:
                if rng.random() < 0.1:
                    s.sendall(b'{"op":"list"}\n' * 2000)     # a flood it never reads
                else:
                    for _ in range(rng.randint(1, 5)):
                        s.sendall(rng.choice(GARBAGE))
                    if rng.random() < 0.5:
                        s.recv(4096)
            results.add(garbage=1)
        except OSError:
            pass
        time.sleep(rng.random() * 0.05)


def lister(daemon, deadline, results):
    while time.time() < deadline:
        began = time.perf_counter()
        try:
            reply = request(daemon.socket, {"op": "list"})
            if reply.get("type") == "jobs":
                with results.lock:
                    results.latencies.append(time.perf_counter() - began)
        except (OSError, ValueError):
            pass
        time.sleep(0.05)


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else float("nan")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=600)
    parser.add_argument("--ltd", help="the ltd binary (default: a release build, made if missing)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    binary = args.ltd or os.path.join(ROOT, ".build/release/ltd")
    if not args.ltd:
        subprocess.run(["swift", "build", "-c", "release", "--product", "ltd"], cwd=ROOT, check=True)
    directory = tempfile.mkdtemp(prefix="ltd-soak-")
    daemon = Daemon(binary, directory)
    # Whatever ends the soak, the daemon does not outlive it.
    atexit.register(lambda: daemon.process is not None and daemon.process.poll() is None and daemon.process.kill())
    daemon.start()
    baseline_fds = daemon.fds()
    rng = random.Random(args.seed)
    jobs = [f"soak{i}" for i in range(JOBS)]
    pace = 20
    for i, job in enumerate(jobs):
        # Each job runs for 30-90 % of the soak, so most end within it and their followers are checked.
        steps = max(20, int(args.seconds * 1000 / pace * (0.3 + 0.6 * i / JOBS)))
        reply = request(daemon.socket, {"op": "start", "job": job, "spec": spec(steps, pace)})
        assert reply.get("type") == "started", reply
    results = Results()
    deadline = time.time() + args.seconds
    threads = [threading.Thread(target=subscriber, args=(daemon, jobs, deadline, results, random.Random(args.seed * 1000 + i)))
               for i in range(SUBSCRIBERS)]
    threads += [threading.Thread(target=garbage_sender, args=(daemon, deadline, results, random.Random(-i))) for i in range(4)]
    threads.append(threading.Thread(target=lister, args=(daemon, deadline, results)))
    for t in threads:
        t.daemon = True
        t.start()
    peak_rss = peak_fds = 0; peak_at = 0.0
    kills = [time.time() + args.seconds * 0.3, time.time() + args.seconds * 0.6]
    unexpected_exit = None
    while time.time() < deadline:
        if kills and time.time() >= kills[0]:
            kills.pop(0)
            daemon.kill9()
            print(f"soak: kill -9 and restart at {args.seconds - (deadline - time.time()):.0f} s", flush=True)
        with daemon.lock:
            if daemon.process.poll() is not None and not daemon.expected_exit:
                unexpected_exit = daemon.process.returncode
                break
            rss = daemon.rss_kib()
            if rss > peak_rss: peak_rss, peak_at = rss, args.seconds - (deadline - time.time())
            peak_fds = max(peak_fds, daemon.fds())
        time.sleep(0.2)
    for t in threads:
        t.join(timeout=30)
    time.sleep(2.5)   # refused connections linger up to 2 s
    final_fds = daemon.fds()
    # Compare each complete stream with the job's log, event by event.
    checked = mismatched = events = lost = duplicated = 0
    logs = {}
    for job, start, lines in results.streams:
        if job not in logs:
            with open(os.path.join(daemon.state, "owners", str(os.getuid()), job, "events.ndjson"), "rb") as f:
                logs[job] = f.read().splitlines(keepends=True)
        expected = logs[job][start - 1:]
        checked += 1
        events += len(lines)
        received = [json.loads(line)["seq"] for line in lines]
        duplicated += len(received) - len(set(received))
        lost += len(set(range(start, start + len(expected))) - set(received))
        if lines != expected:
            mismatched += 1
            first = next((i for i, (a, b) in enumerate(zip(lines, expected)) if a != b), min(len(lines), len(expected)))
            results.errors.append(f"{job} from {start}: {len(lines)} events received, {len(expected)} logged, first difference at {start + first}")
    daemon.expected_exit = True
    daemon.process.send_signal(signal.SIGTERM)
    status = daemon.process.wait(timeout=60)
    print(f"soak: {args.seconds} s, {JOBS} jobs, {SUBSCRIBERS} subscribers, 2 kill -9 + restarts")
    print(f"  subscriptions: {results.joined} joined, {results.left} left cleanly, {results.vanished} vanished, "
          f"{results.reconnects} reconnects after a drop; {results.garbage} garbage connections")
    print(f"  streams checked against the logs: {checked} complete ({events} events), {mismatched} mismatched, "
          f"{lost} events lost, {duplicated} duplicated; {len(results.errors)} errors during the run")
    print(f"  peak RSS {peak_rss / 1024:.1f} MiB at {peak_at:.0f} s; fds: baseline {baseline_fds}, peak {peak_fds}, at the end {final_fds}")
    print(f"  list latency over {len(results.latencies)} calls: p50 {percentile(results.latencies, 50) * 1000:.1f} ms, "
          f"p99 {percentile(results.latencies, 99) * 1000:.1f} ms")
    print(f"  ltd exited {status} on SIGTERM; log in {directory}/ltd.log")
    failures = list(results.errors[:20])
    if unexpected_exit is not None:
        failures.append(f"ltd died unasked (status {unexpected_exit})")
    if final_fds > baseline_fds + 2:
        failures.append(f"fds did not return to the baseline ({final_fds} > {baseline_fds})")
    if checked == 0:
        failures.append("no stream was complete: nothing was checked")
    if status != 0:
        failures.append(f"ltd exited {status} on SIGTERM")
    for failure in failures:
        print("soak: FAIL: " + failure, file=sys.stderr)
    if not failures:
        shutil.rmtree(directory, ignore_errors=True)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
