"""End to end: the Python client against the real ltd (and ltctl), on a private socket."""

import json
import math
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from ltd_client import (AlreadySubscribed, BadJSON, BadRequest, Client, ConnectionLost, DaemonUnavailable,
                        InvalidJobName, InvalidSpec, JobActive, JobExists, LineTooLong, LtdError, NotReached,
                        PermissionDenied, ShuttingDown,
                        TooManyJobs, UnknownJob, UnknownOp, WrongState, decode_line, float32, to_rows)
from ltd_client.spec import colab_example

import golden

FINAL_STATES = {"finished", "cancelled", "diverged", "failed"}
WAIT = 30.0  # seconds: generous bounds so a broken daemon fails the test instead of hanging it


def wait_for(client, name, predicate, timeout=WAIT):
    deadline = time.monotonic() + timeout
    status = client.status(name)
    while not predicate(status):
        if time.monotonic() > deadline:
            raise AssertionError("job %s never reached the expected status; last: %r" % (name, status))
        time.sleep(0.02)
        status = client.status(name)
    return status


def check_stream_shape(events, name):
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1)), "seq must run 1, 2, 3, ... with no gap"
    assert all(e["job"] == name for e in events)
    kinds = [e["type"] for e in events]
    assert kinds[0] == "start" and kinds[1] == "state" and kinds[-1] == "end"
    assert kinds[-2] == "state" and events[-2]["state"] in FINAL_STATES
    assert events[-1]["state"] == events[-2]["state"]


# The basics.

def test_hello_names_protocol_1_and_the_daemon(client, ltd):
    hello = client.hello()
    assert hello["type"] == "hello"
    assert hello["protocol"] == 1
    assert hello["pid"] == ltd.process.pid
    assert hello["uid"] == os.getuid()
    assert isinstance(hello["version"], str)
    # The caller, as the daemon sees it: this process.
    assert hello["peer"]["pid"] == os.getpid()
    assert (hello["peer"]["uid"], hello["peer"]["gid"]) == (os.getuid(), os.getgid())


def test_colab_example_matches_keras_bit_for_bit(client, job_name):
    status = client.start(job_name, colab_example())
    assert status["job"] == job_name and status["owner"] == os.getuid()
    events = list(client.tail(job_name, timeout=WAIT))
    check_stream_shape(events, job_name)
    assert events[-1]["state"] == "finished"
    rows = to_rows(events)
    steps = golden.golden_steps()
    assert len(rows) == 12
    for row, step in zip(rows, steps):
        where = "iteration %d" % row["iteration"]
        assert (row["epoch"], row["step"], row["iteration"]) == (step["epoch"], step["step"], step["global_step"])
        assert row["indices"] == step["indices"], where
        # The Keras numbers, as float32 values: exactly equal.
        assert row["rmse"] == step["logs"]["root_mean_squared_error"], where
        assert row["val_rmse"] == step["val_eval_rmse"], where
        assert row["loss"] == step["logs"]["loss"], where
        assert row["val_loss"] == step["val_eval_loss"], where
        assert (row["w_after"], row["b_after"]) == (step["w_after"], step["b_after"]), where
        assert "slot_kernel_velocity" in row and "slot_bias_velocity" in row
    end = events[-1]
    assert (float32(end["w"]), float32(end["b"])) == (steps[-1]["w_after"], steps[-1]["b_after"])
    final = client.status(job_name)
    assert final["state"] == "finished" and final["iteration"] == 12 and final["epoch"] == 4


def test_explain_is_the_step_the_job_took(client, job_name):
    spec = colab_example()
    spec["optimizer"] = {"name": "adam", "learning_rate": 0.1}
    client.start(job_name, spec)
    events = list(client.tail(job_name, timeout=WAIT))
    steps = [e for e in events if e["type"] == "step"]
    for step in steps:
        working = client.explain(job_name, step["iteration"])
        assert working["type"] == "explanation" and working["iteration"] == step["iteration"]
        for key in ("w_before", "b_before", "grad_w", "grad_b", "w_after", "b_after", "batch_loss"):
            assert float32(working[key]) == float32(step[key]), (step["iteration"], key)
        assert [r["row"] for r in working["rows"]] == step["batch"]["indices"]
        # Adam's slots before the step are the previous step's, by their wire names.
        assert working["kernel"]["slots_after"] == step["slots"]["kernel"]
        names = [line["name"] for line in working["kernel"]["lines"]]
        assert names == ["kernel.momentum", "kernel.velocity", "w"]
        assert working["kernel"]["lines"][-1]["value"] == step["w_after"]
    third = client.explain(job_name, 3)
    assert third["kernel"]["slots_before"] == steps[1]["slots"]["kernel"]
    initial = client.explain(job_name, 0)["initial"]
    assert (initial["w"], initial["b"]) == (0.5, 0.0)
    with pytest.raises(NotReached) as caught:
        client.explain(job_name, 13)
    assert caught.value.field == "iteration" and "12" in str(caught.value)


def test_list_includes_the_job(client, job_name):
    client.start(job_name, colab_example())
    assert job_name in [job["job"] for job in client.list()]


def test_a_job_is_named_by_its_short_name_or_owner_slash_name(client, job_name):
    """Names per owner: one's own job by NAME, anyone's as OWNER/NAME (a login name or a uid); list(all=True)
    lists everyone's with their full names."""
    import pwd
    started = client.start(job_name, colab_example(paused=True))
    owner = pwd.getpwuid(os.getuid()).pw_name
    full = owner + "/" + job_name
    assert started["full_name"] == full
    assert client.status(full)["owner"] == os.getuid()
    assert client.status("%d/%s" % (os.getuid(), job_name))["full_name"] == full
    assert client.step(full, 2)["state"] == "paused"
    assert full in [job["full_name"] for job in client.list(all=True)]
    events = []
    for event in client.tail(full):
        events.append(event)
        if event["type"] == "step" and event["iteration"] == 2:
            break
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    client.cancel(full)


# Several subscribers, and ltctl, see the same stream.

def test_two_python_subscribers_and_ltctl_get_equal_events(ltd, client, ltctl_bin, job_name):
    client.start(job_name, colab_example(paused=True, pace_ms=20))
    first = client.tail(job_name, timeout=WAIT)
    second = Client(ltd.socket_path).tail(job_name, timeout=WAIT)
    ltctl = subprocess.Popen([ltctl_bin, "tail", job_name, "--json", "--socket", ltd.socket_path],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ltd.env)
    # Let one event reach the first subscriber while the job is still paused, then run it to the end.
    head = [next(first)]
    client.resume(job_name)
    events_first = head + list(first)
    events_second = list(second)
    out, err = ltctl.communicate(timeout=WAIT)
    assert ltctl.returncode == 0, err.decode()
    lines = out.decode().splitlines()
    assert lines and all(line.startswith("{") for line in lines), (
        "%s tail --json did not print NDJSON (is it the real ltctl, from branch ctl?): %r" % (ltctl_bin, out[:300]))
    events_ltctl = [decode_line(line) for line in lines]
    check_stream_shape(events_first, job_name)
    assert events_first == events_second
    assert events_ltctl == events_first
    assert len(to_rows(events_first)) == 12


def test_reconnecting_with_since_continues_without_gap_or_duplicate(client, ltd, job_name):
    client.start(job_name, colab_example(pace_ms=10))
    sub = client.tail(job_name, timeout=WAIT)
    head = [next(sub) for _ in range(7)]
    sub.close()
    assert sub.last_seq == 7
    rest = list(Client(ltd.socket_path).tail(job_name, since=sub.last_seq + 1, timeout=WAIT))
    whole = list(client.tail(job_name, timeout=WAIT))
    assert head + rest == whole
    check_stream_shape(whole, job_name)


def test_subscribing_past_the_end_is_complete_and_empty(client, job_name):
    client.start(job_name, colab_example())
    events = list(client.tail(job_name, timeout=WAIT))
    late = client.tail(job_name, since=len(events) + 1)
    assert late.complete
    assert list(late) == []
    assert list(client.tail(job_name, since=len(events), timeout=WAIT)) == events[-1:]


def test_every_and_types_filter_the_stream(client, job_name):
    client.start(job_name, colab_example())
    every4 = list(client.tail(job_name, every=4, timeout=WAIT))
    assert [e["iteration"] for e in every4 if e["type"] == "step"] == [4, 8, 12]
    assert every4[-1]["type"] == "end"
    epochs = list(client.tail(job_name, types=["epoch"], timeout=WAIT))
    assert [e["type"] for e in epochs] == ["epoch"] * 4 + ["end"]


# Control.

def test_pause_step_resume(client, job_name):
    client.start(job_name, colab_example(paused=True))
    assert client.status(job_name)["state"] == "paused"
    reply = client.step(job_name, 3)
    assert reply["job"] == job_name
    status = wait_for(client, job_name, lambda s: s["iteration"] == 3)
    assert status["state"] == "paused" and status["epoch"] == 1
    client.step(job_name)
    wait_for(client, job_name, lambda s: s["iteration"] == 4)
    client.resume(job_name)
    events = list(client.tail(job_name, timeout=WAIT))
    assert events[-1]["state"] == "finished"
    assert [e["state"] for e in events if e["type"] == "state"][0] == "paused"
    assert len(to_rows(events)) == 12


def test_pause_a_running_job_then_cancel_and_delete(client, job_name):
    client.start(job_name, colab_example(pace_ms=200))
    assert client.pause(job_name)["state"] == "paused"
    assert client.cancel(job_name)["job"] == job_name
    events = list(client.tail(job_name, timeout=WAIT))
    assert events[-1]["state"] == "cancelled"
    assert client.delete(job_name)["job"] == job_name
    assert job_name not in [job["job"] for job in client.list()]
    with pytest.raises(UnknownJob):
        client.status(job_name)


def test_divergence_arrives_as_float_nan_and_infinity(client, job_name):
    spec = colab_example(optimizer={"name": "sgd", "learning_rate": 1e6}, epochs=20, on_divergence="continue")
    client.start(job_name, spec)
    events = list(client.tail(job_name, timeout=WAIT))
    rows = to_rows(events)
    assert len(rows) == 60
    values = [r["w_after"] for r in rows] + [r["loss"] for r in rows]
    assert all(isinstance(v, float) for v in values)
    assert any(math.isnan(v) or math.isinf(v) for v in values)


def test_divergence_stops_with_a_message(client, job_name):
    spec = colab_example(optimizer={"name": "sgd", "learning_rate": 1e6}, epochs=20)
    client.start(job_name, spec)
    events = list(client.tail(job_name, timeout=WAIT))
    assert events[-1]["state"] == "diverged"
    assert events[-2]["message"]
    assert client.status(job_name)["message"]


# Every error path.

def test_unknown_job(client, job_name):
    with pytest.raises(UnknownJob) as caught:
        client.status("no-such-" + job_name)
    assert caught.value.code == "unknown_job" and ("no-such-" + job_name) in caught.value.message
    for operation in (client.pause, client.resume, client.cancel, client.delete):
        with pytest.raises(UnknownJob):
            operation("no-such-" + job_name)
    with pytest.raises(UnknownJob):
        client.tail("no-such-" + job_name)


def test_bad_spec_names_its_field(client, job_name):
    with pytest.raises(InvalidSpec) as caught:
        client.start(job_name, colab_example(optimizer={"name": "rmsprop", "learning_rate": 0.05, "rho": 1.5}))
    assert caught.value.code == "invalid_spec"
    assert caught.value.field == "optimizer.rho"
    assert "rho" in caught.value.message
    with pytest.raises(InvalidSpec) as caught:
        client.start(job_name, colab_example(data={"x": [1.0, 2.0], "y": [1.0]}))
    assert caught.value.field is not None and caught.value.field.startswith("data")
    with pytest.raises(InvalidSpec) as caught:
        client.start(job_name, colab_example(data={"x": [1.0, math.nan], "y": [1.0, 2.0]}))
    assert caught.value.field is not None and caught.value.field.startswith("data.x")
    with pytest.raises(UnknownJob):
        client.status(job_name)  # nothing was started


def test_invalid_job_names(client):
    for name in ("../etc", "-leading-dash", "has space", "", "x" * 65, "slash/inside"):
        with pytest.raises(InvalidJobName) as caught:
            client.start(name, colab_example())
        assert caught.value.code == "invalid_job_name"
    with pytest.raises(InvalidJobName):
        client.status("../etc")


def test_job_exists(client, job_name):
    client.start(job_name, colab_example(paused=True))
    with pytest.raises(JobExists):
        client.start(job_name, colab_example())
    client.cancel(job_name)


def test_delete_active_job_and_step_on_running_job(client, job_name):
    client.start(job_name, colab_example(pace_ms=500))
    wait_for(client, job_name, lambda s: s["state"] == "running")
    with pytest.raises(JobActive) as caught:
        client.delete(job_name)
    assert caught.value.code == "job_active"
    with pytest.raises(WrongState) as caught:
        client.step(job_name, 1)
    assert caught.value.code == "wrong_state"
    client.cancel(job_name)
    list(client.tail(job_name, timeout=WAIT))
    with pytest.raises(WrongState):
        client.pause(job_name)  # over
    with pytest.raises(WrongState):
        client.cancel(job_name)
    client.delete(job_name)


def test_bad_requests_through_the_generic_request(client, job_name):
    with pytest.raises(UnknownOp):
        client.request("frobnicate")
    with pytest.raises(BadRequest):
        client.request("status")  # no job
    with pytest.raises(BadRequest):
        client.request("status", job=job_name, colour="blue")  # unknown field
    client.start(job_name, colab_example(paused=True))
    with pytest.raises(BadRequest):
        client.tail(job_name, every=0)
    with pytest.raises(BadRequest):
        client.tail(job_name, types=["bogus"])
    with pytest.raises(BadRequest):
        client.tail(job_name, since=0)
    with pytest.raises(BadRequest):
        client.step(job_name, 0)
    client.cancel(job_name)
    assert client.hello()["protocol"] == 1  # the connection stayed open


def _raw_exchange(path, payload, replies):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(WAIT)
        sock.connect(path)
        sock.sendall(payload)
        reader = sock.makefile("rb")
        return [decode_line(reader.readline()) for _ in range(replies)]


def test_bad_json_keeps_the_connection_and_already_subscribed(ltd, client, job_name):
    [bad, hello] = _raw_exchange(ltd.socket_path, b'{"op": nope\n{"op":"hello","id":7}\n', 2)
    assert bad["type"] == "error" and bad["code"] == "bad_json"
    assert hello["type"] == "hello" and hello["id"] == 7
    from ltd_client.errors import error_from_reply
    assert isinstance(error_from_reply(bad), BadJSON)
    client.start(job_name, colab_example(paused=True))
    sub = ('{"op":"subscribe","id":1,"job":"%s"}\n' % job_name).encode()
    replies = _raw_exchange(ltd.socket_path, sub + sub.replace(b'"id":1', b'"id":2'), 4)
    errors = [r for r in replies if r["type"] == "error"]
    assert [e["id"] for e in errors] == [2]
    assert isinstance(error_from_reply(errors[0]), AlreadySubscribed)
    client.cancel(job_name)


AS_NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def python_for_nobody():
    """A Python >= 3.9 that uid 65534 can run (sys.executable may live under root's 0700 home)."""
    import shutil
    for candidate in (sys.executable, "/usr/bin/python3", shutil.which("python3")):
        if candidate and subprocess.run(AS_NOBODY + [candidate, "-c", "import sys; assert sys.version_info >= (3, 9)"],
                                        capture_output=True, timeout=WAIT).returncode == 0:
            return candidate
    return None


def python_as_nobody_or_skip(test):
    """The Python for a client run as uid 65534, or a loud skip of `test` where that cannot be done."""
    import shutil
    if os.getuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip(f"!!! needs root and setpriv to run a client as another uid; {test} NOT run !!!")
    python = python_for_nobody()
    if python is None:
        pytest.skip(f"!!! no Python >= 3.9 that uid 65534 can run; {test} NOT run !!!")
    return python


def run_client_as_nobody(python, socket_path, script, *args):
    """Runs `script` (which prints one JSON value) with this ltd_client as uid 65534 against the daemon at
    `socket_path`, opened to it for this (mode 0666); returns what it printed."""
    os.chmod(socket_path, 0o666)  # let uid 65534 open our private socket
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(golden.__file__))))
    result = subprocess.run(AS_NOBODY + [python, "-c", script, socket_path, *args], capture_output=True, text=True,
                            env=env, timeout=WAIT)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_permission_denied_for_another_uid(ltd, client, job_name):
    python = python_as_nobody_or_skip("permission test")
    client.start(job_name, colab_example(paused=True))
    script = (
        "import json, sys\n"
        "from ltd_client import Client, PermissionDenied\n"
        "c = Client(sys.argv[1])\n"
        "out = {'status': c.status(sys.argv[2])['state'],\n"
        "       'listed': sys.argv[2] in [j['full_name'] for j in c.list(all=True)],\n"
        "       'own': [j['job'] for j in c.list()]}\n"
        "try:\n"
        "    c.cancel(sys.argv[2])\n"
        "    out['cancel'] = 'allowed'\n"
        "except PermissionDenied as e:\n"
        "    out['cancel'] = [e.code, e.owner, e.message]\n"
        "try:\n"
        "    c.step(sys.argv[2], 1)\n"
        "    out['step'] = 'allowed'\n"
        "except PermissionDenied as e:\n"
        "    out['step'] = e.code\n"
        "print(json.dumps(out))\n")
    # Another user names root's job by its full name.
    seen = run_client_as_nobody(python, ltd.socket_path, script, "root/" + job_name)
    assert seen["status"] == "paused" and seen["listed"]  # anyone may watch
    assert seen["own"] == []  # list without all: one's own jobs
    code, owner, message = seen["cancel"]
    assert (code, owner) == ("permission_denied", 0)
    assert "0" in message
    assert seen["step"] == "permission_denied"
    assert client.status(job_name)["state"] == "paused"  # untouched
    client.cancel(job_name)  # the owner may


def test_line_too_long_closes_only_that_connection(fresh_ltd):
    daemon = fresh_ltd(args=["--max-line-bytes", "4096"]).start()
    with daemon.client() as c:
        big = colab_example(data={"x": [float(i) for i in range(2000)], "y": [2.0 * i for i in range(2000)]})
        with pytest.raises(LineTooLong) as caught:
            c.start("big", big)
        assert caught.value.code == "line_too_long"
        assert c.hello()["protocol"] == 1  # the client reconnects; the daemon is fine
        # Far beyond the limit: the daemon hangs up while we are still sending, yet its error line still wins.
        huge = colab_example(data={"x": [float(i) for i in range(300000)], "y": [2.0 * i for i in range(300000)]})
        with pytest.raises(LineTooLong):
            c.start("huge", huge)
        with pytest.raises(UnknownJob):
            c.status("big")


def test_too_many_jobs(fresh_ltd):
    daemon = fresh_ltd(args=["--max-jobs", "2"]).start()
    with daemon.client() as c:
        c.start("one", colab_example())
        c.start("two", colab_example())
        with pytest.raises(TooManyJobs) as caught:
            c.start("three", colab_example())
        assert caught.value.code == "too_many_jobs"
        list(c.tail("one", timeout=WAIT))
        c.delete("one")
        c.start("three", colab_example())  # room again


def test_connection_refused_and_missing_socket(fresh_ltd):
    daemon = fresh_ltd().start()
    path = daemon.socket_path
    assert daemon.stop(signal.SIGKILL) is not None  # a killed daemon leaves its socket file behind
    with pytest.raises(DaemonUnavailable) as caught:
        Client(path).hello()
    assert path in str(caught.value) and "ltd --socket" in str(caught.value)
    if os.path.exists(path):
        assert "refused" in caught.value.message
        os.unlink(path)
    with pytest.raises(DaemonUnavailable) as caught:
        Client(path).list()
    assert "no socket" in caught.value.message


def test_a_damaged_job_is_listed_with_its_reason_and_can_be_deleted(fresh_ltd):
    daemon = fresh_ltd().start()
    name = "damaged1"
    with daemon.client() as c:
        c.start(name, colab_example())
        wait_for(c, name, lambda s: s["state"] in FINAL_STATES)
    assert daemon.stop() == 0
    checkpoint = os.path.join(daemon.state_dir, "owners", str(os.getuid()), name, "checkpoint.json")
    with open(checkpoint, "w") as handle:
        handle.write('{"version": 1, "seq": ')
    restarted = fresh_ltd(daemon.directory).start()
    with restarted.client() as c:
        listed = {job["job"]: job for job in c.list()}
        assert listed[name]["state"] == "damaged"
        assert "checkpoint.json" in listed[name]["reason"]
        status = c.status(name)
        assert status["state"] == "damaged" and status["reason"] == listed[name]["reason"]
        with pytest.raises(WrongState):
            list(c.tail(name, timeout=WAIT))
        c.delete(name)
        assert name not in [job["job"] for job in c.list()]


def test_shutdown_ends_a_subscription_and_since_resumes_after_restart(fresh_ltd):
    daemon = fresh_ltd().start()
    name = "restart1"
    with daemon.client() as c:
        c.start(name, colab_example(paused=True))
        c.step(name, 2)
        wait_for(c, name, lambda s: s["iteration"] == 2)
    keeper = daemon.client()  # an idle request connection that lives across the restart
    assert keeper.hello()["pid"] == daemon.process.pid
    sub = daemon.client().tail(name, timeout=WAIT)
    seen = []
    while len(seen) < 4:  # start, state paused, step 1, step 2
        seen.append(next(sub))
    assert daemon.stop() == 0
    with pytest.raises((ShuttingDown, ConnectionLost)):
        for event in sub:
            seen.append(event)
    restarted = fresh_ltd(daemon.directory).start()
    assert keeper.hello()["pid"] == restarted.process.pid  # reconnects by itself
    keeper.close()
    with restarted.client() as c:
        assert name in [job["job"] for job in c.list()]
        c.resume(name)
        rest = list(c.tail(name, since=sub.last_seq + 1, timeout=WAIT))
        whole = list(c.tail(name, timeout=WAIT))
    assert seen + rest == whole
    check_stream_shape(whole, name)
    rows = to_rows(whole)
    assert [r["rmse"] for r in rows] == [s["logs"]["root_mean_squared_error"] for s in golden.golden_steps()]


def test_numpy_data_trains_the_same_job(client, job_name):
    numpy = pytest.importorskip("numpy", reason="numpy is optional; install it to check numpy data in specs")
    from ltd_client.spec import COLAB_X, COLAB_Y
    spec = colab_example(data={"x": numpy.array(COLAB_X, dtype=numpy.float32),
                               "y": numpy.array(COLAB_Y, dtype=numpy.float32)})
    client.start(job_name, spec)
    rows = to_rows(client.tail(job_name, timeout=WAIT))
    assert [r["rmse"] for r in rows] == [s["logs"]["root_mean_squared_error"] for s in golden.golden_steps()]


def test_a_daemon_of_another_uid_is_not_trusted(ltd_bin):
    import shutil
    import tempfile
    if os.getuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("!!! needs root and setpriv to run ltd as another uid; daemon-uid test NOT run !!!")
    directory = tempfile.mkdtemp(prefix="ltd-peeruid-")   # in /tmp itself: pytest's tmp_path is closed to uid 65534
    os.chmod(directory, 0o777)
    path = os.path.join(directory, "ltd.sock")
    stranger = subprocess.Popen(AS_NOBODY + [ltd_bin, "--socket", path, "--state-dir", os.path.join(directory, "state")],
                                stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + WAIT
        while True:
            with pytest.raises(DaemonUnavailable) as refused:
                Client(socket_path=path).hello()
            if refused.value.errno is None or time.time() > deadline:   # not a connect(2) failure: ltd is up
                break
            time.sleep(0.05)
        assert "runs as nobody (uid 65534), not as you (uid 0), root or the ltd service user" in str(refused.value)
    finally:
        stranger.terminate()
        stranger.wait(timeout=WAIT)
        shutil.rmtree(directory, ignore_errors=True)
