"""The shell recipes in clients/shell, run as written against the real ltd."""

import os
import shutil
import subprocess

import pytest

from ltd_client import decode_line, float32, to_rows
from ltd_client.spec import colab_example

import golden

SHELL = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "shell")
WAIT = 60


def need(tool, package):
    if shutil.which(tool) is None:
        pytest.skip("!!! %s is not installed (apt-get install %s); its recipe is NOT tested !!!" % (tool, package))


def run(script, *args, env):
    return subprocess.run([os.path.join(SHELL, script)] + list(args), capture_output=True, text=True, env=env,
                          timeout=WAIT, stdin=subprocess.DEVNULL)


@pytest.fixture
def finished_job(ltd, client, job_name):
    client.start(job_name, colab_example())
    events = list(client.tail(job_name, timeout=WAIT))
    return job_name, events


@pytest.mark.parametrize("script,tool,package", [("tail.sh", "socat", "socat"),
                                                 ("tail-nc.sh", "nc", "netcat-openbsd")])
def test_tail_recipes_print_the_stream(ltd, finished_job, script, tool, package):
    need(tool, package)
    name, events = finished_job
    result = run(script, name, env=ltd.env)
    assert result.returncode == 0, result.stderr
    assert [decode_line(line) for line in result.stdout.splitlines()] == events
    resumed = run(script, name, "5", env=ltd.env)
    assert resumed.returncode == 0, resumed.stderr
    assert [decode_line(line) for line in resumed.stdout.splitlines()] == events[4:]


@pytest.mark.parametrize("script,tool,package", [("tail.sh", "socat", "socat"),
                                                 ("tail-nc.sh", "nc", "netcat-openbsd")])
def test_tail_recipes_follow_a_live_job(ltd, client, job_name, script, tool, package):
    need(tool, package)
    client.start(job_name, colab_example(pace_ms=30))
    result = run(script, job_name, env=ltd.env)
    assert result.returncode == 0, result.stderr
    events = [decode_line(line) for line in result.stdout.splitlines()]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert events[-1]["type"] == "end" and len(to_rows(events)) == 12


@pytest.mark.parametrize("script,tool,package", [("tail.sh", "socat", "socat"),
                                                 ("tail-nc.sh", "nc", "netcat-openbsd")])
def test_tail_recipes_report_errors(ltd, script, tool, package):
    need(tool, package)
    unknown = run(script, "no-such-job", env=ltd.env)
    assert unknown.returncode == 1 and unknown.stdout == ""
    assert "unknown_job" in unknown.stderr
    missing = run(script, "job1", env=dict(ltd.env, LTD_SOCKET=os.path.join(ltd.directory, "absent.sock")))
    assert missing.returncode == 3 and "no ltd socket" in missing.stderr


def test_status_recipe(ltd, finished_job):
    need("socat", "socat")
    name, events = finished_job
    result = run("status.sh", name, env=ltd.env)
    assert result.returncode == 0, result.stderr
    reply = decode_line(result.stdout)
    assert reply["type"] == "status"
    assert reply["status"]["job"] == name and reply["status"]["state"] == "finished"
    assert reply["status"]["iteration"] == 12
    listed = run("status.sh", env=ltd.env)
    assert listed.returncode == 0, listed.stderr
    assert name in [job["job"] for job in decode_line(listed.stdout)["jobs"]]
    unknown = run("status.sh", "no-such-job", env=ltd.env)
    assert unknown.returncode == 1 and "unknown_job" in unknown.stderr


def test_steps_tsv_recipe_matches_keras(ltd, finished_job):
    need("socat", "socat")
    need("jq", "jq")
    name, _ = finished_job
    result = run("steps-tsv.sh", name, env=ltd.env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split("\t") == ["iteration", "w", "b", "rmse", "val_rmse"]
    assert len(lines) == 13
    for line, step in zip(lines[1:], golden.golden_steps()):
        iteration, w, b, rmse, val_rmse = line.split("\t")
        assert int(iteration) == step["global_step"]
        assert float32(float(w)) == step["w_after"] and float32(float(b)) == step["b_after"]
        assert float32(float(rmse)) == step["logs"]["root_mean_squared_error"]
        assert float32(float(val_rmse)) == step["val_eval_rmse"]
