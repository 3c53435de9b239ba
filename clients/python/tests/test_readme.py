"""The README's walkthrough runs as written, against the real ltd."""

import os
import re

import pytest

from ltd_client import float32

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")


def walkthrough_blocks():
    text = open(README).read()
    section = text[text.index("## Walkthrough"):text.index("## Shell recipes")]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def test_walkthrough_runs_and_shows_what_it_says(ltd, monkeypatch):
    pytest.importorskip("pandas", reason="the walkthrough uses pandas")
    matplotlib = pytest.importorskip("matplotlib", reason="the walkthrough plots")
    matplotlib.use("Agg")
    monkeypatch.setenv("LTD_SOCKET", ltd.socket_path)
    with ltd.client() as c:
        for name in ("colab", "slow"):  # the README's job names; make a rerun in one session possible
            if name in [job["job"] for job in c.list()]:
                if c.status(name)["state"] in ("running", "paused"):
                    c.cancel(name)
                    list(c.tail(name, types=["end"], timeout=30))
                c.delete(name)
    namespace = {}
    blocks = walkthrough_blocks()
    assert len(blocks) == 5
    for block in blocks:
        exec(compile(block, README, "exec"), namespace)
    assert len(namespace["rows"]) == 12
    frame = namespace["df"]
    # The table printed in the README is this frame.
    shown = frame[["epoch", "step", "indices", "w_after", "b_after", "rmse", "val_rmse"]].to_string()
    text = open(README).read()
    assert shown in text
    assert round(namespace["rows"][-1]["rmse"], 6) == 13.397754
    assert float32(namespace["w"]["w_after"]) == namespace["rows"][4]["w_after"]  # explain's result is the step's
    assert round(namespace["rows"][-1]["val_rmse"], 4) == 12.6213
