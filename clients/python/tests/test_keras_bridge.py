"""The Keras bridge against real Keras 3.15.1 / TensorFlow 2.21.0 and a real ltd and ltctl.

The Keras cases run in one process of the pinned venv's python (keras_cases.py: TensorFlow is slow to import); the
venv is .venv-keras in the repository (scripts/keras-venv makes it; scripts/test runs that). Without it these tests
skip saying why, except under CI=true, where they fail: CI must run them.
"""

import json
import os
import subprocess

import pytest

from conftest import REPO_ROOT
from ltd_client import float32

CASES = ["colab", "unseeded", "sgd_momentum", "adam", "adamw", "validation_split"]


def keras_python():
    python = os.environ.get("LTD_KERAS_PYTHON") or os.path.join(REPO_ROOT, ".venv-keras", "bin", "python")
    if not os.access(python, os.X_OK):
        message = ("no Keras venv at %s: run `bash scripts/keras-venv` (pip installs tensorflow-cpu==2.21.0 and "
                   "keras==3.15.1) or set LTD_KERAS_PYTHON" % python)
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return python


@pytest.fixture(scope="module")
def results(ltd, ltctl_bin, tmp_path_factory):
    python = keras_python()
    out = str(tmp_path_factory.mktemp("keras") / "results.json")
    env = dict(os.environ, PYTHONPATH=os.path.join(REPO_ROOT, "clients", "python"))
    run = subprocess.run([python, os.path.join(os.path.dirname(__file__), "keras_cases.py"), ltd.socket_path,
                          ltctl_bin, out], env=env, capture_output=True, timeout=1800)
    assert run.returncode == 0, "keras_cases.py failed (%d):\n%s\n%s\nltd:\n%s" % (
        run.returncode, run.stdout.decode()[-3000:], run.stderr.decode()[-6000:], ltd.log())
    with open(out) as handle:
        return json.load(handle)


def case(results, name):
    result = results[name]
    assert "exception" not in result, result.get("exception")
    return result


@pytest.mark.parametrize("name", CASES)
def test_watched_replicated_and_identical(results, name):
    r = case(results, name)
    assert r["warnings"] == []
    first, second = r["watchers"]
    assert first["status"] == 0, first["stderr"]
    assert second["status"] == 0, second["stderr"]
    assert first["stdout"] == second["stdout"]
    lines = [json.loads(line) for line in first["stdout"].splitlines()]
    steps = [e for e in lines if e["type"] == "step"]
    assert lines[0]["type"] == "start" and lines[0]["kind"] == "external"
    assert lines[-1]["type"] == "end" and lines[-1]["state"] == "finished"
    assert [e["seq"] for e in lines] == list(range(1, len(lines) + 1))
    assert len(steps) == r["batches"]
    status = json.loads(r["status"]["stdout"])
    assert status["kind"] == "external" and status["state"] == "finished"
    # The bridge changed nothing fit computed or told its callbacks.
    assert r["same_weights"] and r["same_history"] and r["same_batch_logs"]
    # ltd's replica matches the real run in every step.
    replicate = r["replicate"]
    diff = json.loads(replicate["stdout"])
    assert replicate["status"] == 0, (diff, replicate["stderr"])
    assert diff["identical"] is True
    assert diff["identical_steps"] == len(steps) == diff["steps_b"]
    for field in ("w_initial", "rows", "w_after", "b_after", "loss", "rmse", "val_loss", "val_rmse"):
        assert field in diff["fields_compared"], field


def test_partial_last_batch_is_published(results):
    r = case(results, "adam")
    lines = [json.loads(line) for line in r["watchers"][0]["stdout"].splitlines()]
    sizes = [e["batch"]["size"] for e in lines if e["type"] == "step"]
    assert sizes == [16, 16, 16, 2] * 2


def test_validation_split_records_the_split_rows(results):
    r = case(results, "validation_split")
    start = json.loads(r["watchers"][0]["stdout"].splitlines()[0])
    assert start["n_train"] == 9 and start["n_val"] == 3
    assert start["spec"]["validation"]["x"] == [10, 11, 12]


def test_unseeded_run_records_its_initial_weights(results):
    r = case(results, "unseeded")
    start = json.loads(r["watchers"][0]["stdout"].splitlines()[0])
    # The spec keeps the kernel Keras drew as a double; the job starts from its float32 value.
    assert float32(start["spec"]["init"]["kernel"]) == float32(start["w"]) and start["b"] == 0
    assert start["platform"]["keras"] == "3.15.1" and start["platform"]["device"] == "CPU"


def test_seeded_shuffled_run_is_replicated_bit_for_bit(results):
    # After keras.utils.set_random_seed(6), fit's order is Keras's seeded shuffle, which ltd reproduces from the seed.
    r = case(results, "shuffled_seeded")
    first, second = r["watchers"]
    assert first["status"] == 0 and first["stdout"] == second["stdout"]
    start = json.loads(first["stdout"].splitlines()[0])
    assert start["shuffled"] is True and start["spec"]["shuffle"] == {"seed": 6}
    assert r["same_weights"] and r["same_history"] and r["same_batch_logs"]
    diff = json.loads(r["replicate"]["stdout"])
    assert r["replicate"]["status"] == 0, diff
    assert diff["identical"] is True and diff["identical_steps"] == r["batches"] == 12
    # The publisher never saw the rows; identical weights and losses in every step show the order was Keras's.
    assert "rows" in diff["fields_not_compared"] and "w_after" in diff["fields_compared"]


def test_unseeded_shuffled_run_is_watched_but_not_replicated(results):
    r = case(results, "shuffled_unseeded")
    first, second = r["watchers"]
    assert first["status"] == 0 and first["stdout"] == second["stdout"]
    lines = [json.loads(line) for line in first["stdout"].splitlines()]
    assert lines[0]["shuffled"] is True
    assert all("indices" not in e["batch"] for e in lines if e["type"] == "step")
    # (No comparison with a run without the bridge here: with no seed, two fits shuffle differently anyway.)
    assert r["replicate"]["status"] == 1
    assert "shuffled" in r["replicate"]["stderr"] and "shuffle=False" in r["replicate"]["stderr"]


def test_no_daemon_warns_once_and_training_is_untouched(results):
    r = case(results, "no_daemon")
    assert len(r["warnings"]) == 1 and "no ltd" in r["warnings"][0]
    assert r["same_history"] and r["same_weights"]


def test_a_model_that_is_not_one_kernel_and_one_bias_is_refused(results):
    error = case(results, "bad_model")["error"]
    assert error is not None
    assert "sequential" in error and "(1, 2)" in error and "(2, 1)" in error
