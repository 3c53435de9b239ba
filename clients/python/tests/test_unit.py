"""Unit tests that need no daemon: defaults, number parsing, errors, to_rows on the twelve-point events."""

import errno
import json
import math
import os
import socket
import subprocess
import sys
import tempfile

import pytest

import ltd_client
from ltd_client import (Client, DaemonUnavailable, InvalidSpec, LtdError, PermissionDenied, UnknownJob, decode_line,
                        default_socket_path, float32, read_events, to_rows)
from ltd_client.errors import error_from_reply
from ltd_client.spec import colab_example
from ltd_client.wire import encode_request

import golden

PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# Default socket path: the same rule as ltd and ltctl (Sources/LTProtocol/DefaultPaths.swift).

def test_ltd_socket_wins_for_everyone():
    env = {"LTD_SOCKET": "/srv/x.sock", "XDG_RUNTIME_DIR": "/run/user/1000"}
    assert default_socket_path(env, uid=1000) == "/srv/x.sock"
    assert default_socket_path(env, uid=0) == "/srv/x.sock"


def test_root_uses_the_system_socket():
    assert default_socket_path({"XDG_RUNTIME_DIR": "/run/user/0"}, uid=0) == "/run/ltd/ltd.sock"


def test_user_uses_xdg_runtime_dir():
    assert default_socket_path({"XDG_RUNTIME_DIR": "/run/user/1000"}, uid=1000) == "/run/user/1000/ltd/ltd.sock"


def test_user_without_a_daemon_reaches_the_system_service():
    env = {"XDG_RUNTIME_DIR": "/run/user/1000"}
    only_system = {"/run/ltd/ltd.sock"}.__contains__
    assert default_socket_path(env, uid=1000, exists=only_system) == "/run/ltd/ltd.sock"
    both = {"/run/ltd/ltd.sock", "/run/user/1000/ltd/ltd.sock"}.__contains__
    assert default_socket_path(env, uid=1000, exists=both) == "/run/user/1000/ltd/ltd.sock"
    assert default_socket_path(dict(env, LTD_SOCKET="/srv/x.sock"), uid=1000, exists=only_system) == "/srv/x.sock"


def test_user_without_xdg_runtime_dir_falls_back_to_tmp():
    assert default_socket_path({}, uid=1234) == "/tmp/ltd-1234/ltd.sock"
    assert default_socket_path({"LTD_SOCKET": "", "XDG_RUNTIME_DIR": ""}, uid=1234) == "/tmp/ltd-1234/ltd.sock"


def test_client_reads_the_environment(monkeypatch):
    monkeypatch.setenv("LTD_SOCKET", "/tmp/somewhere/ltd.sock")
    assert Client().socket_path == "/tmp/somewhere/ltd.sock"
    assert Client("/elsewhere.sock").socket_path == "/elsewhere.sock"
    monkeypatch.delenv("LTD_SOCKET")
    assert Client().socket_path == default_socket_path(os.environ, os.getuid())


# Numbers and lines.

def test_non_finite_strings_become_floats_in_numeric_fields():
    event = decode_line('{"type":"step","job":"j","seq":9,"w_after":"NaN","b_after":"-Infinity","loss":"Infinity",'
                        '"batch":{"size":2,"indices":[0,1],"pred":["Infinity",1.5]},'
                        '"slots":{"kernel":{"velocity":"Infinity"}}}\n')
    assert math.isnan(event["w_after"])
    assert event["b_after"] == -math.inf
    assert event["loss"] == math.inf
    assert event["batch"]["pred"] == [math.inf, 1.5]
    assert event["slots"]["kernel"]["velocity"] == math.inf


def test_string_fields_stay_strings_even_when_they_read_like_numbers():
    # "NaN" and "Infinity" are valid job names ([A-Za-z0-9][A-Za-z0-9._-]{0,63}).
    event = decode_line(b'{"type":"state","job":"NaN","seq":3,"state":"diverged","message":"Infinity"}')
    assert event["job"] == "NaN"
    assert event["message"] == "Infinity"
    status = decode_line('{"type":"status","status":{"job":"Infinity","state":"diverged","w":"NaN","rmse":"Infinity"}}')
    assert status["status"]["job"] == "Infinity"
    assert math.isnan(status["status"]["w"])
    assert status["status"]["rmse"] == math.inf


def test_decode_line_rejects_non_objects():
    with pytest.raises(ValueError):
        decode_line("[1,2]")
    with pytest.raises(ValueError):
        decode_line("{not json")


def test_requests_are_one_compact_line_with_non_finite_as_strings():
    line = encode_request({"op": "start", "job": "j", "spec": {"data": {"x": [1.0, math.nan], "y": [math.inf, 2]}}})
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert json.loads(line) == {"op": "start", "job": "j", "spec": {"data": {"x": [1.0, "NaN"], "y": ["Infinity", 2]}}}


def test_requests_accept_array_likes():
    import array
    line = encode_request({"op": "start", "spec": {"data": {"x": array.array("d", [1.0, 2.5]), "y": (3, math.inf)}}})
    assert json.loads(line)["spec"]["data"] == {"x": [1.0, 2.5], "y": [3, "Infinity"]}


def test_requests_accept_numpy_and_pandas():
    numpy = pytest.importorskip("numpy", reason="numpy is optional; install it to check numpy data in specs")
    x = numpy.arange(1, 4, dtype=numpy.float32)
    line = encode_request({"op": "start", "spec": {"data": {"x": x, "y": x * 2}, "epochs": numpy.int64(2),
                                                    "init": {"kernel": numpy.float32(0.5)}}})
    spec = json.loads(line)["spec"]
    assert spec == {"data": {"x": [1.0, 2.0, 3.0], "y": [2.0, 4.0, 6.0]}, "epochs": 2, "init": {"kernel": 0.5}}


def test_float32_rounds_like_a_float32_conversion():
    assert float32(8.8) == 8.800000190734863
    assert float32(8.595638) == 8.595638275146484
    assert float32(0.5) == 0.5
    assert float32(1e39) == math.inf and float32(-1e39) == -math.inf
    assert float32(3.4028235e38) == 3.4028234663852886e38
    assert math.isnan(float32(math.nan))


# Errors.

@pytest.mark.parametrize("code", ["bad_json", "line_too_long", "unknown_op", "bad_request", "invalid_job_name",
                                  "invalid_spec", "unknown_job", "job_exists", "permission_denied", "wrong_state",
                                  "job_active", "too_many_jobs", "disk_limit", "already_subscribed", "shutting_down",
                                  "too_many_connections", "busy", "internal"])
def test_every_protocol_error_code_has_its_own_class(code):
    error = error_from_reply({"type": "error", "id": 2, "code": code, "message": "what to do"})
    assert type(error) is not LtdError
    assert isinstance(error, LtdError)
    assert error.code == code and error.message == "what to do"
    assert str(error) == code + ": what to do"


def test_error_carries_field_and_owner():
    spec_error = error_from_reply({"type": "error", "code": "invalid_spec", "field": "optimizer.rho",
                                   "message": "optimizer.rho: 1.5 is out of range"})
    assert isinstance(spec_error, InvalidSpec) and isinstance(spec_error, ValueError)
    assert spec_error.field == "optimizer.rho"
    denied = error_from_reply({"type": "error", "code": "permission_denied", "owner": 1000, "message": "m"})
    assert isinstance(denied, PermissionDenied) and isinstance(denied, PermissionError)
    assert denied.owner == 1000
    unknown = error_from_reply({"type": "error", "code": "unknown_job", "message": "no job"})
    assert isinstance(unknown, UnknownJob) and isinstance(unknown, LookupError)


def test_an_error_code_from_a_newer_daemon_is_still_an_ltd_error():
    error = error_from_reply({"type": "error", "code": "quota_exceeded", "message": "later"})
    assert type(error) is LtdError and error.code == "quota_exceeded"


# Connection failures name the socket and say how to start ltd.

def test_missing_socket_names_the_path_and_how_to_start_ltd():
    path = os.path.join(tempfile.mkdtemp(), "absent.sock")
    with pytest.raises(DaemonUnavailable) as caught:
        Client(path).hello()
    assert caught.value.errno == errno.ENOENT
    assert caught.value.socket_path == path
    assert path in str(caught.value)
    assert "ltd --socket" in str(caught.value) and "systemctl start ltd" in str(caught.value)
    assert isinstance(caught.value, ConnectionError)


def test_stale_socket_file_is_connection_refused():
    directory = tempfile.mkdtemp()
    path = os.path.join(directory, "stale.sock")
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(path)  # bound but never listening: what a crashed daemon leaves behind
    stale.close()
    with pytest.raises(DaemonUnavailable) as caught:
        Client(path).list()
    assert caught.value.errno == errno.ECONNREFUSED
    assert "refused" in str(caught.value) and path in str(caught.value)


def test_socket_path_too_long_is_explained():
    path = "/tmp/" + "x" * 200 + ".sock"
    with pytest.raises(DaemonUnavailable) as caught:
        Client(path).hello()
    assert "too long" in caught.value.message and path in caught.value.message


def test_tail_on_a_missing_socket_fails_at_the_call():
    with pytest.raises(DaemonUnavailable):
        Client(os.path.join(tempfile.mkdtemp(), "absent.sock")).tail("job1")


# The twelve-point spec.

def test_colab_example_is_the_golden_config():
    config = json.load(open(os.path.join(golden.FIXTURES, "seed_e4_b4.config.json")))
    spec = colab_example()
    assert spec["data"] == {"x": config["x"], "y": config["y"]}
    assert spec["optimizer"] == {"name": config["optimizer"], "learning_rate": config["learning_rate"]}
    assert spec["init"] == {"kernel": config["init"]["kernel"], "bias": config["init"]["bias"]}
    assert (spec["epochs"], spec["batch_size"], spec["shuffle"]) == (config["epochs"], config["batch_size"], False)


def test_colab_example_overrides_do_not_leak():
    paced = colab_example(pace_ms=200, paused=True)
    assert paced["pace_ms"] == 200 and paced["paused"] is True
    assert "pace_ms" not in colab_example()
    one = colab_example()
    one["data"]["x"].append(13.0)
    assert len(colab_example()["data"]["x"]) == 12


# to_rows on the twelve-point events.

def test_to_rows_gives_twelve_rows_with_keras_numbers():
    rows = to_rows(read_events(golden.protocol_lines()))
    steps = golden.golden_steps()
    assert len(rows) == 12
    for row, step in zip(rows, steps):
        assert (row["epoch"], row["step"], row["iteration"]) == (step["epoch"], step["step"], step["global_step"])
        assert row["indices"] == step["indices"]
        assert row["batch_size"] == 4
        assert row["rmse"] == step["logs"]["root_mean_squared_error"]
        assert row["loss"] == step["logs"]["loss"]
        assert row["val_rmse"] == step["val_eval_rmse"]
        assert row["val_loss"] == step["val_eval_loss"]
        assert (row["w_before"], row["b_before"]) == (step["w_before"], step["b_before"])
        assert (row["w_after"], row["b_after"]) == (step["w_after"], step["b_after"])
    assert list(rows[0])[:len(ltd_client.STEP_COLUMNS)] == list(ltd_client.STEP_COLUMNS)


def test_to_rows_without_float32_rounding_keeps_the_wire_decimals():
    rows = to_rows(golden.protocol_events(), float32_exact=False)
    assert rows[0]["rmse"] == 8.595638  # the wire text, not yet the float32
    assert float32(rows[0]["rmse"]) == golden.golden_steps()[0]["logs"]["root_mean_squared_error"]


def test_to_rows_flattens_slots_and_ranges_and_skips_other_events():
    events = [
        {"type": "start", "job": "big", "seq": 1, "precision": "float64"},
        {"type": "state", "job": "big", "seq": 2, "state": "running"},
        {"type": "step", "job": "big", "seq": 3, "epoch": 1, "step": 1, "iteration": 1,
         "batch": {"size": 2000, "range": [0, 2000]}, "w_before": 0.1, "b_before": 0, "grad_w": 1, "grad_b": 2,
         "w_after": 0.2, "b_after": "NaN", "batch_loss": 3, "loss": 3, "rmse": 1.7, "val_loss": 2, "val_rmse": 1.4,
         "slots": {"kernel": {"m": 0.1, "v": 0.01}, "bias": {"m": 0.2, "v": 0.04}}},
        {"type": "epoch", "job": "big", "seq": 4, "epoch": 1},
    ]
    events = [decode_line(json.dumps(e)) for e in events]
    [row] = to_rows(events)
    assert row["indices"] is None and row["batch_range"] == (0, 2000) and row["batch_size"] == 2000
    assert row["w_after"] == 0.2  # float64 job: no float32 rounding
    assert math.isnan(row["b_after"])
    assert (row["slot_kernel_m"], row["slot_kernel_v"], row["slot_bias_m"], row["slot_bias_v"]) == (0.1, 0.01, 0.2, 0.04)


def test_rows_make_a_dataframe():
    pandas = pytest.importorskip("pandas", reason="pandas is optional; install it to check DataFrame(rows)")
    frame = pandas.DataFrame(to_rows(golden.protocol_events()))
    assert frame.shape[0] == 12
    assert list(frame["iteration"]) == list(range(1, 13))
    assert frame["rmse"].iloc[-1] == golden.golden_steps()[-1]["logs"]["root_mean_squared_error"]


def test_read_events_reads_an_ndjson_file(tmp_path):
    path = tmp_path / "run.ndjson"
    path.write_text("".join(golden.protocol_lines()) + "\n")
    events = list(read_events(str(path)))
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert events[-1]["type"] == "end"


# The optional plot module.

def test_plot_without_matplotlib_says_how_to_install_it():
    blocker = ("import sys\n"
               "class Block:\n"
               "    def find_spec(self, name, path=None, target=None):\n"
               "        if name == 'matplotlib' or name.startswith('matplotlib.'):\n"
               "            raise ImportError('No module named ' + repr(name))\n"
               "sys.meta_path.insert(0, Block())\n"
               "import ltd_client\n"
               "try:\n"
               "    import ltd_client.plot\n"
               "except ImportError as e:\n"
               "    print('IMPORTERROR', e)\n")
    out = subprocess.run([sys.executable, "-c", blocker], cwd=PACKAGE_ROOT, capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=PACKAGE_ROOT))
    assert out.returncode == 0, out.stderr
    assert "IMPORTERROR" in out.stdout
    assert "pip install matplotlib" in out.stdout


def test_plot_draws_lines_and_rmse(tmp_path):
    matplotlib = pytest.importorskip("matplotlib", reason="matplotlib is optional; install it to check the plots")
    matplotlib.use("Agg")
    from ltd_client import plot
    events = golden.protocol_events()
    ax = plot.lines(events)
    # 12 data points, the initial line, one line per step.
    assert len(ax.collections[0].get_offsets()) == 12
    assert len(ax.lines) == 1 + 12
    last = ax.lines[-1].get_ydata()
    assert last[-1] == pytest.approx(golden.golden_steps()[-1]["w_after"] * 12 + golden.golden_steps()[-1]["b_after"])
    ax2 = plot.rmse(events)
    keras, validation = ax2.lines[0], ax2.lines[1]
    assert list(keras.get_ydata()) == [s["logs"]["root_mean_squared_error"] for s in golden.golden_steps()]
    assert list(validation.get_ydata()) == [s["val_eval_rmse"] for s in golden.golden_steps()]
    ax2.figure.savefig(str(tmp_path / "rmse.png"))
    assert (tmp_path / "rmse.png").stat().st_size > 1000


def test_ssh_command_follows_ltctl():
    from ltd_client.client import ssh_command
    env = {"LTD_SSH": "ssh -i key -o BatchMode=yes", "LTD_REMOTE_LTCTL": "/opt/ltd/bin/ltctl"}
    assert ssh_command("ssh://alice@box:2222/run/ltd/ltd.sock", env) == [
        "ssh", "-i", "key", "-o", "BatchMode=yes", "-p", "2222", "alice@box", "--",
        "'/opt/ltd/bin/ltctl'", "dial-stdio", "--socket", "'/run/ltd/ltd.sock'"]
    assert ssh_command("ssh://box", {}) == ["ssh", "box", "--", "'ltctl'", "dial-stdio"]
    for bad in ("ssh://-oProxyCommand=x", "ssh://alice@box:99999", "ssh://al ice@box", "ssh://"):
        with pytest.raises(ValueError):
            ssh_command(bad, {})
