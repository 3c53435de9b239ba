"""ensure_daemon and the demo against the real ltd (LTD_BIN), and hello's capabilities."""

import os
import signal
import subprocess
import sys

import pytest

from ltd_client import Client, ensure_daemon
from ltd_client.daemon import bundled_binary


@pytest.fixture
def private_env(tmp_path, ltd_bin, monkeypatch):
    """A user with no daemon: their own runtime and state directories, ltd from LTD_BIN."""
    monkeypatch.delenv("LTD_SOCKET", raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("LTD_BIN", ltd_bin)
    (tmp_path / "run").mkdir(mode=0o700)
    yield tmp_path
    path = str(tmp_path / "run" / "ltd" / "ltd.sock")
    if os.path.exists(path):
        try:
            os.kill(Client(path).hello()["pid"], signal.SIGTERM)
        except Exception:
            pass


def test_ensure_daemon_starts_one_then_reuses_it(private_env):
    if os.getuid() == 0:
        pytest.skip("root's default socket is the system service's")
    path = ensure_daemon()
    assert path == str(private_env / "run" / "ltd" / "ltd.sock")
    first = Client(path).hello()
    assert ensure_daemon() == path and Client(path).hello()["pid"] == first["pid"]
    assert os.path.exists(private_env / "state" / "ltd" / "ltd.log")


def test_ensure_daemon_with_a_socket_path_starts_it_there(private_env):
    path = str(private_env / "run" / "mine.sock")
    assert ensure_daemon(path) == path
    hello = Client(path).hello()
    assert hello["version"] and "explain" in hello["capabilities"]
    assert Client(path).capabilities() == hello["capabilities"]
    os.kill(hello["pid"], signal.SIGTERM)


def test_ensure_daemon_says_what_to_install_without_ltd(private_env, monkeypatch):
    monkeypatch.setenv("LTD_BIN", "")
    monkeypatch.setenv("PATH", str(private_env))
    if bundled_binary("ltd") is not None:
        pytest.skip("a bundled ltd is installed")
    with pytest.raises(Exception) as error:
        ensure_daemon(str(private_env / "run" / "none.sock"))
    assert "pip install ltd" in str(error.value)


def test_demo_module(private_env):
    path = str(private_env / "run" / "demo.sock")
    env = dict(os.environ, LTD_SOCKET=path,
               PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = subprocess.run([sys.executable, "-m", "ltd_client", "demo"], env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert "finished: w 1.3996835, b 0.9419614 after 12 steps" in out.stdout
    os.kill(Client(path).hello()["pid"], signal.SIGTERM)
