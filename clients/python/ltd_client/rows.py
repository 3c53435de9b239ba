"""Flat per-step records from a job's events, ready for ``pandas.DataFrame(rows)`` or the csv module."""

import io
import os
from typing import Any, Dict, Iterable, Iterator, List, Optional, Union

from .wire import decode_line, float32

__all__ = ["to_rows", "read_events", "STEP_COLUMNS"]

# The per-step columns, in order; slot columns (slot_kernel_velocity, ...) follow, named after the optimizer.
STEP_COLUMNS = (
    "job", "seq", "epoch", "step", "iteration", "batch_size", "indices", "w_before", "b_before", "grad_w", "grad_b",
    "w_after", "b_after", "batch_loss", "batch_rmse", "loss", "rmse", "val_loss", "val_rmse",
)

_NUMBER_COLUMNS = ("w_before", "b_before", "grad_w", "grad_b", "w_after", "b_after", "batch_loss", "batch_rmse",
                   "loss", "rmse", "val_loss", "val_rmse")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def to_rows(events: Iterable[Dict[str, Any]], float32_exact: Optional[bool] = None) -> List[Dict[str, Any]]:
    """One flat dict per `step` event, in order; other events are skipped.

    Columns: `STEP_COLUMNS`, then one ``slot_<variable>_<name>`` column per optimizer slot (``slot_kernel_velocity``
    for RMSprop). `indices` is the list of dataset rows of the batch; a contiguous batch the daemon sent as a range
    (more than 1024 rows) has ``indices`` None and ``batch_range`` ``(first, end)``.

    `float32_exact`: round every number to float32, so that each value is exactly the float32 the job computed
    (the wire holds the shortest decimal, ``8.595638``; the float32 is 8.595638275146484, the value Keras
    reports). None (default) does this when a `start` event in `events` says ``"precision": "float32"``.
    """
    rows: List[Dict[str, Any]] = []
    round32 = float32_exact
    for event in events:
        kind = event.get("type")
        if kind == "start" and float32_exact is None:
            round32 = event.get("precision", "float32") == "float32"
            continue
        if kind != "step":
            continue
        batch = event.get("batch") or {}
        row: Dict[str, Any] = {
            "job": event.get("job"),
            "seq": event.get("seq"),
            "epoch": event.get("epoch"),
            "step": event.get("step"),
            "iteration": event.get("iteration"),
            "batch_size": batch.get("size"),
            "indices": list(batch["indices"]) if isinstance(batch.get("indices"), list) else None,
        }
        if isinstance(batch.get("range"), list) and len(batch["range"]) == 2:
            row["batch_range"] = tuple(batch["range"])
        for column in _NUMBER_COLUMNS:
            value = event.get(column)
            if round32 and _is_number(value):
                value = float32(float(value))
            row[column] = value
        slots = event.get("slots")
        if isinstance(slots, dict):
            for variable in sorted(slots):
                names = slots[variable]
                if not isinstance(names, dict):
                    continue
                for name in sorted(names):
                    value = names[name]
                    if round32 and _is_number(value):
                        value = float32(float(value))
                    row["slot_%s_%s" % (variable, name)] = value
        rows.append(row)
    return rows


def read_events(source: Union[str, os.PathLike, Iterable[Any]]) -> Iterator[Dict[str, Any]]:
    """Events from NDJSON: a file path (``ltctl tail --json JOB > run.ndjson``), an open file, or lines.

    Blank lines are skipped; non-finite strings become floats as in `decode_line`.
    """
    if isinstance(source, (str, os.PathLike)):
        with io.open(source, "rb") as handle:
            for line in handle:
                if line.strip():
                    yield decode_line(line)
        return
    for line in source:
        if isinstance(line, dict):
            yield line
        elif line.strip():
            yield decode_line(line)
