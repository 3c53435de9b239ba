"""``python -m ltd_client demo``: train the classic twelve-point example on a daemon (a private one is started
when none answers) and print every optimizer step. ``python -m ltd_client ltd|ltctl ARGS`` runs the wheel's
binaries."""

import os
import sys

from . import Client, __version__
from .daemon import bundled_binary, ensure_daemon
from .spec import colab_example

USAGE = """usage: python -m ltd_client demo      train the classic example and show every step
       python -m ltd_client ltd ARGS   run the bundled ltd (the wheel's binaries)
       python -m ltd_client ltctl ARGS run the bundled ltctl"""


def demo() -> int:
    path = ensure_daemon()
    client = Client(path)
    hello = client.hello()
    print("ltd %s at %s (ltd_client %s)" % (hello.get("version", "?"), path, __version__))
    name = "demo-%d" % os.getpid()
    client.start(name, colab_example())
    print("%5s %4s %4s %12s %12s %11s %11s" % ("epoch", "step", "iter", "w after", "b after", "keras loss", "keras rmse"))
    end = None
    for event in client.tail(name):
        if event["type"] == "step":
            print("%5d %4d %4d %12.8g %12.8g %11.4f %11.4f" % (event["epoch"], event["step"], event["iteration"],
                                                              event["w_after"], event["b_after"], event["loss"],
                                                              event["rmse"]))
        elif event["type"] == "end":
            end = event
    client.delete(name)
    if end is None or end.get("state") != "finished":
        print("the demo job ended %s" % (end or {}).get("state", "without an end event"), file=sys.stderr)
        return 1
    print("finished: w %.8g, b %.8g after %d steps; what Keras's model.fit gives, float32 bit for bit"
          % (end["w"], end["b"], end["iteration"]))
    return 0


def main(argv) -> int:
    if argv[:1] == ["demo"]:
        return demo()
    if argv[:1] in (["ltd"], ["ltctl"]):
        binary = bundled_binary(argv[0])
        if binary is None:
            print("no %s binary found (install the ltd wheel, or set %s_BIN)" % (argv[0], argv[0].upper()), file=sys.stderr)
            return 69
        os.execv(binary, [binary] + argv[1:])
    print(USAGE, file=sys.stderr)
    return 0 if argv[:1] in (["-h"], ["--help"]) else 64


def ltd() -> None:
    """The wheel's ``ltd`` command."""
    sys.exit(main(["ltd"] + sys.argv[1:]))


def ltctl() -> None:
    """The wheel's ``ltctl`` command."""
    sys.exit(main(["ltctl"] + sys.argv[1:]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
