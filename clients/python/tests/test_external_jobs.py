"""External jobs (docs/PROTOCOL.md, "External jobs") against a real ltd, over raw connections: who may publish, what a
bad event does, what a dropped publisher or a restart means. No Keras here; test_keras_bridge.py runs the real thing."""

import json
import os
import signal
import subprocess

import pytest

from ltd_client.client import _Connection
from ltd_client.errors import BadRequest, PermissionDenied, WrongState

SPEC = {"data": {"x": [1, 2, 3, 4, 5, 6], "y": [2, 4, 6, 8, 10, 12]}, "init": {"kernel": 0.5, "bias": 0},
        "optimizer": {"name": "sgd", "learning_rate": 0.01}, "epochs": 2, "batch_size": 4, "shuffle": False}


class Publisher:
    def __init__(self, socket_path):
        self.conn = _Connection(socket_path, 10)
        self.ids = iter(range(1, 1 << 30))

    def request(self, op, **fields):
        from ltd_client.errors import error_from_reply
        request_id = next(self.ids)
        self.conn.send(dict(op=op, id=request_id, **fields))
        reply = self.conn.read_message()
        assert reply is not None and reply.get("id") == request_id, reply
        if reply["type"] == "error":
            raise error_from_reply(reply)
        return reply

    def close(self):
        self.conn.close()


def step(i, **extra):
    epoch, k = (i - 1) // 2 + 1, (i - 1) % 2 + 1
    rows = [0, 1, 2, 3] if k == 1 else [4, 5]
    event = {"type": "step", "epoch": epoch, "step": k, "iteration": i, "batch": {"size": len(rows), "indices": rows},
             "w_before": 0.5, "b_before": 0, "w_after": 0.6, "b_after": 0.1, "loss": 30.0, "rmse": 5.4772256,
             "slots": {"kernel": {}, "bias": {}}}
    event.update(extra)
    return event


def events(client, job):
    return list(client.tail(job))


def test_create_publish_and_watch(ltd, client, ltctl_bin, job_name):
    publisher = Publisher(ltd.socket_path)
    started = publisher.request("create", job=job_name, spec=SPEC, platform={"keras": "3.15.1", "device": "CPU"})
    assert started["status"]["kind"] == "external" and started["status"]["state"] == "running"
    assert publisher.request("publish", job=job_name, event=step(1))["seq"] == 3
    # A bad event names its field and changes nothing; the corrected one follows.
    with pytest.raises(BadRequest) as bad:
        publisher.request("publish", job=job_name, event=step(2, batch={"size": 2, "indices": [4, 6]}))
    assert bad.value.field == "event.batch.indices[1]"
    with pytest.raises(BadRequest):
        publisher.request("publish", job=job_name, event=step(3))
    # Nobody else may publish, not even the same user on another connection; pause does not apply.
    other = Publisher(ltd.socket_path)
    with pytest.raises(PermissionDenied):
        other.request("publish", job=job_name, event=step(2))
    other.close()
    with pytest.raises(WrongState):
        client.pause(job_name)
    assert publisher.request("publish", job=job_name, event=step(2))["seq"] == 4
    publisher.request("publish", job=job_name, event={"type": "epoch", "epoch": 1, "loss": 30, "rmse": 5.4772256})
    for i in (3, 4):
        publisher.request("publish", job=job_name, event=step(i))
    publisher.request("publish", job=job_name, event={"type": "epoch", "epoch": 2, "loss": 20})
    assert publisher.request("publish", job=job_name, event={"type": "end", "state": "finished"})["seq"] == 10
    with pytest.raises(WrongState):
        publisher.request("publish", job=job_name, event={"type": "end", "state": "finished"})
    publisher.close()
    stream = events(client, job_name)
    assert [e["seq"] for e in stream] == list(range(1, 11))
    assert [e["type"] for e in stream] == ["start", "state"] + ["step"] * 2 + ["epoch"] + ["step"] * 2 + ["epoch", "state", "end"]
    assert stream[0]["kind"] == "external" and stream[0]["platform"]["keras"] == "3.15.1"
    status = client.status(job_name)
    assert status["kind"] == "external" and status["state"] == "finished" and status["iteration"] == 4
    assert any(j["job"] == job_name and j["kind"] == "external" for j in client.list())
    env = dict(ltd.env, NO_COLOR="1")
    tail = subprocess.run([ltctl_bin, "tail", job_name], env=env, capture_output=True, text=True, timeout=60)
    assert tail.returncode == 0, tail.stderr
    assert "initial w 0.5, b 0.0 (recorded from the run)" in tail.stdout
    assert "published from a real fit: Keras 3.15.1, CPU" in tail.stdout


def test_a_dropped_publisher_fails_the_job(ltd, client, job_name):
    publisher = Publisher(ltd.socket_path)
    publisher.request("create", job=job_name, spec=SPEC)
    publisher.request("publish", job=job_name, event=step(1))
    publisher.close()
    stream = events(client, job_name)
    assert stream[-1]["type"] == "end" and stream[-1]["state"] == "failed"
    assert "disconnected before end, after 1 of 4 steps" in stream[-1]["message"]
    assert client.status(job_name)["state"] == "failed"


def test_cancel_ends_an_external_job(ltd, client, job_name):
    publisher = Publisher(ltd.socket_path)
    publisher.request("create", job=job_name, spec=SPEC)
    client.cancel(job_name)
    with pytest.raises(WrongState):
        publisher.request("publish", job=job_name, event=step(1))
    publisher.close()
    assert client.status(job_name)["state"] == "cancelled"
    client.delete(job_name)


def test_native_jobs_take_no_publish_and_replicate_refuses_shuffled(ltd, client, ltctl_bin, job_name):
    publisher = Publisher(ltd.socket_path)
    publisher.request("create", job=job_name, spec=SPEC, shuffled=True)
    with pytest.raises(BadRequest):  # a shuffled run's steps carry no rows
        publisher.request("publish", job=job_name, event=step(1))
    event = step(1)
    del event["batch"]["indices"]
    publisher.request("publish", job=job_name, event=event)
    run = subprocess.run([ltctl_bin, "replicate", job_name], env=ltd.env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 1 and "shuffle=False" in run.stderr
    publisher.request("publish", job=job_name, event={"type": "end", "state": "cancelled", "message": "enough"})
    publisher.close()
    native = job_name + "-native"
    client.start(native, SPEC)
    with pytest.raises(WrongState):
        Publisher(ltd.socket_path).request("publish", job=native, event=step(1))


def test_a_job_being_published_when_ltd_stops_is_restored_failed(fresh_ltd):
    daemon = fresh_ltd().start()
    publisher = Publisher(daemon.socket_path)
    publisher.request("create", job="nb", spec=SPEC)
    publisher.request("publish", job="nb", event=step(1))
    daemon.stop(signal.SIGKILL)
    publisher.close()
    restarted = fresh_ltd(daemon.directory).start()
    with restarted.client() as client:
        stream = list(client.tail("nb"))
        assert [e["seq"] for e in stream] == list(range(1, len(stream) + 1))
        assert [e["type"] for e in stream] == ["start", "state", "step", "state", "end"]
        assert stream[-1]["state"] == "failed" and "ltd stopped while this job was being published" in stream[-1]["message"]
        assert client.status("nb")["kind"] == "external"
    with open(os.path.join(daemon.state_dir, "owners", str(os.getuid()), "nb", "events.ndjson")) as handle:
        assert [json.loads(line)["seq"] for line in handle] == [1, 2, 3, 4, 5]
