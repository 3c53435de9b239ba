"""Pictures of a job, drawn with matplotlib (optional: ``pip install matplotlib``).

    from ltd_client import plot
    plot.lines(events)     # the data, and the line y = w·x + b after each optimizer step
    plot.rmse(events)      # Keras's running RMSE (before each update) against the validation RMSE (after it)

Both take the job's events (a list from ``list(client.tail(name))``, or `read_events`) and return the matplotlib
Axes they drew on; pass ``ax=`` to draw into your own figure.
"""

try:
    import matplotlib.pyplot as _plt
except ImportError as _exc:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        "ltd_client.plot needs matplotlib, which is not installed. Install it with `pip install matplotlib` "
        "(or `pip install 'ltd-client[plot]'`); the rest of ltd_client works without it.") from _exc

from typing import Any, Dict, Iterable, List, Optional, Sequence

from .rows import to_rows

__all__ = ["lines", "rmse"]


def _data(events: List[Dict[str, Any]]) -> Optional[Dict[str, Sequence[float]]]:
    for event in events:
        if event.get("type") == "start":
            spec = event.get("spec") or {}
            data = spec.get("data")
            if isinstance(data, dict) and "x" in data and "y" in data:
                return data
    return None


def lines(events: Iterable[Dict[str, Any]], x: Optional[Sequence[float]] = None,
          y: Optional[Sequence[float]] = None, ax: Any = None, every: int = 1) -> Any:
    """Scatter the training data and draw the fitted line after every `every`-th step, from pale to dark.

    The data comes from the job's `start` event (its spec), or from `x` and `y`.
    """
    events = list(events)
    if x is None or y is None:
        data = _data(events)
        if data is None:
            raise ValueError("no start event with the training data in these events; pass x= and y=")
        x, y = data["x"], data["y"]
    rows = to_rows(events)
    if ax is None:
        _, ax = _plt.subplots(figsize=(7, 4.5))
    ax.scatter(x, y, color="black", zorder=3, label="data")
    lo, hi = min(x), max(x)
    start = next((e for e in events if e.get("type") == "start"), None)
    if start is not None and isinstance(start.get("w"), (int, float)) and isinstance(start.get("b"), (int, float)):
        ax.plot([lo, hi], [start["w"] * lo + start["b"], start["w"] * hi + start["b"]], color="grey",
                linestyle=":", label="initial")
    shown = [r for r in rows if r["iteration"] % max(1, every) == 0 or r is rows[-1]]
    cmap = _plt.get_cmap("viridis")
    for i, row in enumerate(shown):
        w, b = row["w_after"], row["b_after"]
        shade = cmap(0.15 + 0.8 * (i + 1) / max(1, len(shown)))
        label = "after step %d" % row["iteration"] if row is shown[-1] or i == 0 else None
        ax.plot([lo, hi], [w * lo + b, w * hi + b], color=shade, linewidth=1.2, label=label)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_title("The line after each optimizer step")
    ax.legend(loc="best")
    return ax


def rmse(events: Iterable[Dict[str, Any]], ax: Any = None) -> Any:
    """Per iteration: the RMSE Keras reports (running over the epoch, each batch measured before its update)
    and the validation RMSE after the update (what ``model.evaluate`` returns)."""
    rows = to_rows(events)
    if ax is None:
        _, ax = _plt.subplots(figsize=(7, 4.5))
    iterations = [r["iteration"] for r in rows]
    ax.plot(iterations, [r["rmse"] for r in rows], marker="o", label="Keras RMSE (running, before update)")
    ax.plot(iterations, [r["val_rmse"] for r in rows], marker="s", label="validation RMSE (after update)")
    boundaries = [r["iteration"] for r in rows[1:] if r["step"] == 1]
    for boundary in boundaries:
        ax.axvline(boundary - 0.5, color="grey", linewidth=0.6, linestyle="--")
    ax.set_xlabel("iteration (optimizer step)")
    ax.set_ylabel("RMSE")
    ax.set_title("What Keras prints vs the model after the update")
    ax.legend(loc="best")
    return ax
