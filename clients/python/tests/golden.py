"""The Keras golden trace for the twelve-point example (the repository's one copy, in Tests/LTEngineTests/Golden), and
a rewrite of it into protocol v1 events, the way docs/PROTOCOL.md says ltd writes them (float32 numbers as the
shortest decimal that round-trips in float32). The rewrite lets the unit tests exercise `to_rows` and the number
handling without a daemon; the end-to-end tests compare the real daemon's events with the trace itself."""

import json
import math
import os
import struct

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
REPOSITORY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..")
TRACE = os.path.join(REPOSITORY, "Tests", "LTEngineTests", "Golden", "seed_e4_b4.trace.ndjson")


def load_trace(path=TRACE):
    with open(path) as handle:
        return [json.loads(line) for line in handle if line.strip()]


def golden_steps(path=TRACE):
    return [line for line in load_trace(path) if line["type"] == "step"]


def _f32(value):
    return struct.unpack("<f", struct.pack("<f", value))[0]


def shortest_f32(value):
    """The shortest decimal text that parses (as a double, rounded to float32) back to float32 `value`."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    for digits in range(1, 10):
        text = "%.*g" % (digits, value)
        if _f32(float(text)) == value:
            return text
    raise AssertionError("no float32 round-trip text for %r" % value)


def _num(value):
    text = shortest_f32(value)
    return text if text in ("NaN", "Infinity", "-Infinity") else json.loads(text)


def protocol_events(job="job1", path=TRACE):
    """The trace as the protocol's start, state, step..., epoch..., state, end events."""
    trace = load_trace(path)
    init = trace[0]
    events = [{"type": "start", "job": job, "precision": "float32", "w": _num(init["w"]), "b": _num(init["b"]),
               "n_train": init["resolved"]["n_train"], "n_val": init["resolved"]["n_val"],
               "spec": {"data": {"x": init["config"]["x"], "y": init["config"]["y"]}}},
              {"type": "state", "job": job, "state": "running"}]
    for line in trace[1:]:
        if line["type"] == "step":
            events.append({
                "type": "step", "job": job, "epoch": line["epoch"], "step": line["step"],
                "iteration": line["global_step"],
                "batch": {"size": line["batch_size"], "indices": line["indices"],
                          "x": [_num(v) for v in line["x"]], "y": [_num(v) for v in line["y"]]},
                "w_before": _num(line["w_before"]), "b_before": _num(line["b_before"]),
                "grad_w": _num(_f32(line["grad_w_f64"])), "grad_b": _num(_f32(line["grad_b_f64"])),
                "w_after": _num(line["w_after"]), "b_after": _num(line["b_after"]),
                "batch_loss": _num(line["batch_mse_f32"]),
                "loss": _num(line["logs"]["loss"]), "rmse": _num(line["logs"]["root_mean_squared_error"]),
                "val_loss": _num(line["val_eval_loss"]), "val_rmse": _num(line["val_eval_rmse"]),
            })
        elif line["type"] == "epoch_end":
            logs = line["logs"]
            events.append({"type": "epoch", "job": job, "epoch": line["epoch"], "iteration": line["global_step"],
                           "loss": _num(logs["loss"]), "rmse": _num(logs["root_mean_squared_error"]),
                           "val_loss": _num(logs["val_loss"]), "val_rmse": _num(logs["val_root_mean_squared_error"]),
                           "w": _num(line["w"]), "b": _num(line["b"])})
        elif line["type"] == "end":
            events.append({"type": "state", "job": job, "state": "finished"})
            events.append({"type": "end", "job": job, "state": "finished", "iteration": line["global_step"],
                           "w": _num(line["w"]), "b": _num(line["b"])})
    for seq, event in enumerate(events, start=1):
        event["seq"] = seq
    return events


def protocol_lines(job="job1", path=TRACE):
    """The events as NDJSON lines, compact, as they would arrive on the socket."""
    return [json.dumps(e, separators=(",", ":")) + "\n" for e in protocol_events(job, path)]
