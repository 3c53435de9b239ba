"""Fixtures that run the REAL ltd (and ltctl) binaries on a private socket and state directory.

The binaries come from LTD_BIN / LTCTL_BIN, else from `swift build --show-bin-path` in the repository root.
Tests that need ltd are skipped, loudly, only when no ltd binary exists at all.
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

TESTS = os.path.dirname(os.path.abspath(__file__))
PACKAGE_ROOT = os.path.dirname(TESTS)
REPO_ROOT = os.path.dirname(os.path.dirname(PACKAGE_ROOT))
if PACKAGE_ROOT not in sys.path:
    sys.path.insert(0, PACKAGE_ROOT)
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)

from ltd_client import Client, LtdError  # noqa: E402

_bin_path_cache = {}


def _swift_bin_path():
    if "path" not in _bin_path_cache:
        path = None
        if shutil.which("swift") and os.path.exists(os.path.join(REPO_ROOT, "Package.swift")):
            try:
                out = subprocess.run(["swift", "build", "--show-bin-path"], cwd=REPO_ROOT, capture_output=True,
                                     text=True, timeout=120)
                if out.returncode == 0 and out.stdout.strip():
                    path = out.stdout.strip().splitlines()[-1]
            except (OSError, subprocess.TimeoutExpired):
                path = None
        _bin_path_cache["path"] = path
    return _bin_path_cache["path"]


def find_binary(env_name, name):
    explicit = os.environ.get(env_name)
    if explicit:
        return explicit
    directory = _swift_bin_path()
    return os.path.join(directory, name) if directory else None


def _require(env_name, name):
    path = find_binary(env_name, name)
    if not path or not os.access(path, os.X_OK):
        message = ("\n!!! %s NOT FOUND (looked at %s). Build it with `swift build` in %s or set %s; "
                   "the tests that run the real %s are SKIPPED. !!!\n" % (name, path or "<no swift bin path>",
                                                                         REPO_ROOT, env_name, name))
        sys.stderr.write(message)
        pytest.skip(message.strip())
    return path


@pytest.fixture(scope="session")
def ltd_bin():
    return _require("LTD_BIN", "ltd")


@pytest.fixture(scope="session")
def ltctl_bin():
    return _require("LTCTL_BIN", "ltctl")


class Daemon:
    """A real ltd on a private socket and state directory. The socket's directory is world-searchable so that
    tests can connect as another uid (setpriv)."""

    def __init__(self, binary, directory=None, args=()):
        self.binary = binary
        self.args = list(args)
        self.directory = directory or tempfile.mkdtemp(prefix="ltdpy-")
        os.chmod(self.directory, 0o755)
        self.socket_path = os.path.join(self.directory, "ltd.sock")
        self.state_dir = os.path.join(self.directory, "state")
        self.log_path = os.path.join(self.directory, "ltd.stderr")
        self.process = None

    @property
    def env(self):
        env = dict(os.environ)
        env["LTD_SOCKET"] = self.socket_path
        return env

    def start(self, timeout=30.0):
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen([self.binary, "--socket", self.socket_path, "--state-dir", self.state_dir]
                                        + self.args,
                                        stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=self.env)
        log.close()
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("ltd exited with %s at start-up:\n%s" % (self.process.returncode, self.log()))
            try:
                with Client(self.socket_path, timeout=5) as client:
                    client.hello()
                return self
            except LtdError as exc:
                last = exc
                time.sleep(0.05)
        raise RuntimeError("ltd did not answer hello within %ss (%s):\n%s" % (timeout, last, self.log()))

    def client(self, **kwargs):
        return Client(self.socket_path, **kwargs)

    def stop(self, sig=signal.SIGTERM, timeout=30.0):
        if self.process is None or self.process.poll() is not None:
            return None
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise RuntimeError("ltd did not exit within %ss of signal %s:\n%s" % (timeout, sig, self.log()))

    def log(self):
        try:
            with open(self.log_path, "rb") as handle:
                return handle.read().decode("utf-8", "replace")[-4000:]
        except OSError:
            return ""


@pytest.fixture(scope="session")
def ltd(ltd_bin):
    """One daemon for the session; tests use their own job names."""
    daemon = Daemon(ltd_bin).start()
    yield daemon
    daemon.stop()
    shutil.rmtree(daemon.directory, ignore_errors=True)


@pytest.fixture
def fresh_ltd(ltd_bin):
    """A daemon of this test's own, for tests that stop, kill or restart it."""
    daemons = []

    def make(directory=None, args=()):
        daemon = Daemon(ltd_bin, directory, args)
        daemons.append(daemon)
        return daemon

    yield make
    for daemon in daemons:
        try:
            daemon.stop(signal.SIGKILL)
        except RuntimeError:
            pass
    for directory in {d.directory for d in daemons}:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def client(ltd):
    with ltd.client() as c:
        yield c


_names = iter(range(1, 1 << 30))


@pytest.fixture
def job_name(request):
    """A job name unique in this session, readable in the daemon's log."""
    base = "".join(ch if ch.isalnum() else "-" for ch in request.node.name)[:40].strip("-")
    return "%s-%d" % (base or "job", next(_names))
