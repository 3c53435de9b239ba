"""A private ltd for the current user, started on demand: what a notebook needs when no service runs.

The wheel (scripts/package wheel) carries the ltd and ltctl binaries in ``ltd_client/bin``; a clone of the
repository finds them on PATH or through ``LTD_BIN``.
"""

import os
import shutil
import subprocess
import time
from typing import Mapping, Optional

from .client import Client
from .errors import DaemonUnavailable, LtdError
from .wire import SYSTEM_SOCKET, default_socket_path

__all__ = ["ensure_daemon", "bundled_binary"]


def bundled_binary(name: str) -> Optional[str]:
    """The path of `name` (``ltd`` or ``ltctl``): the wheel's own copy, else ``LTD_BIN``/``LTCTL_BIN``, else PATH."""
    own = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bin", name)
    if os.access(own, os.X_OK):
        return own
    return os.environ.get(name.upper() + "_BIN") or shutil.which(name)


def _answers(path: str) -> bool:
    try:
        Client(path, timeout=5.0).hello()
        return True
    except (DaemonUnavailable, LtdError, OSError):
        return False


def _own_socket(environ: Mapping[str, str]) -> str:
    """The current user's socket, never the system service's: where a private daemon listens."""
    return default_socket_path(environ, exists=lambda _: False)


def ensure_daemon(socket_path: Optional[str] = None, timeout: float = 10.0) -> str:
    """Return the socket of a daemon that answers, starting a private one for the current user when none does.

    `socket_path` (default: ``LTD_SOCKET``, else the user's own socket, else the system service's as ltctl finds
    it) is tried first. When nothing answers there, ``ltd`` (the wheel's, or ``LTD_BIN``, or PATH's) is started in
    the background on `socket_path` or the user's own socket, with its state in the usual per-user directory
    (``$XDG_STATE_HOME/ltd``), its log in ``ltd.log`` beside it, and it outlives this Python process, as a
    daemon should; stop it with SIGTERM. Raises `DaemonUnavailable` when none can be reached or started.
    """
    environ = os.environ
    wanted = socket_path or default_socket_path()
    if _answers(wanted):
        return wanted
    path = socket_path or _own_socket(environ)
    if path == SYSTEM_SOCKET and os.getuid() != 0:
        path = _own_socket(environ)
    if path != wanted and _answers(path):
        return path
    binary = bundled_binary("ltd")
    if binary is None:
        raise DaemonUnavailable("no ltd answers at %s and no ltd binary was found to start one: install the ltd "
                                "wheel (pip install ltd), or the Debian package, or set LTD_BIN" % path, path)
    state = environ.get("LTD_STATE_DIR") or os.path.join(
        environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state"), "ltd")
    os.makedirs(state, mode=0o700, exist_ok=True)
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    with open(os.path.join(state, "ltd.log"), "ab") as log:
        process = subprocess.Popen([binary, "--socket", path, "--state-dir", state], stdin=subprocess.DEVNULL,
                                   stdout=log, stderr=log, start_new_session=True, close_fds=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _answers(path):
            return path
        if process.poll() is not None:
            raise DaemonUnavailable("ltd (%s) exited with status %d before it answered at %s; its log is %s"
                                    % (binary, process.returncode, path, os.path.join(state, "ltd.log")), path)
        time.sleep(0.05)
    raise DaemonUnavailable("ltd (%s, pid %d) did not answer at %s within %.0f s; its log is %s"
                            % (binary, process.pid, path, timeout, os.path.join(state, "ltd.log")), path)
