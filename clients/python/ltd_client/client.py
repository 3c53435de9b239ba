"""A small blocking client for ltd's protocol v1 over its Unix socket (docs/PROTOCOL.md).

Request/reply operations share one connection, opened on first use. Each `tail` opens its own connection, because a
subscription turns a connection into an event stream until the job's `end` event.
"""

import datetime
import errno as _errno
import itertools
import math
import os
import pwd
import shlex
import socket
import struct
import subprocess
import threading
from typing import Any, Dict, Iterable, List, Mapping, Optional

from .errors import CapabilityMissing, ConnectionLost, DaemonUnavailable, LtdError, ProtocolError, ShuttingDown, error_from_reply
from .wire import decode_line, default_socket_path, encode_request

__all__ = ["Client", "Subscription", "ssh_command"]


def _how_to_start(path: str) -> str:
    return ("Start ltd there with `ltd --socket %s &` (a daemon of your own; plain `ltd &` uses the default path), "
            "or start the system service with `sudo systemctl start ltd`; or point LTD_SOCKET (or "
            "Client(socket_path=...)) at the socket of a running ltd." % path)


def _connect(path: str, timeout: Optional[float]) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(path)
    except OSError as exc:
        sock.close()
        code = exc.errno
        if code == _errno.ENOENT:
            why = "there is no socket at that path, so no ltd is listening there"
        elif code == _errno.ECONNREFUSED:
            why = "connection refused: the socket file exists but no ltd is running behind it (a stale socket)"
        elif code in (_errno.EACCES, _errno.EPERM):
            why = ("permission denied: the socket's mode does not let you in. The system service's socket is "
                   "group `ltd` (join it with `sudo usermod -aG ltd $USER` and log in again), or run your own `ltd &`")
        elif code == _errno.ENOTDIR:
            why = "a component of the path is not a directory"
        elif code is None and "too long" in str(exc):
            why = "the path is too long for a Unix socket address (at most 107 bytes)"
        else:
            why = exc.strerror or str(exc)
        raise DaemonUnavailable("cannot connect to ltd at %s: %s. %s" % (path, why, _how_to_start(path)),
                                socket_path=path, errno=code) from None
    _check_daemon_uid(sock, path)
    return sock


SERVICE_USER = "ltd"


def _check_daemon_uid(sock: socket.socket, path: str) -> None:
    """The daemon must run as us, as root, or as the `ltd` service user: anyone else listening at the path (a socket
    planted in a shared directory) would read every request and could answer anything. The kernel says who listens
    (SO_PEERCRED), as ltctl checks."""
    _pid, uid, _gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))
    try:
        service = pwd.getpwnam(SERVICE_USER).pw_uid
    except KeyError:
        service = None
    if uid in (os.geteuid(), 0, service):
        return
    sock.close()
    try:
        who = "%s (uid %d)" % (pwd.getpwuid(uid).pw_name, uid)
    except KeyError:
        who = "uid %d" % uid
    raise DaemonUnavailable("the process listening on %s runs as %s, not as you (uid %d), root or the %s service user: "
                            "it is not a daemon this client trusts. Check who made that socket (ls -l %s), or point "
                            "LTD_SOCKET (or Client(socket_path=...)) at your own ltd"
                            % (path, who, os.geteuid(), SERVICE_USER, path), socket_path=path)


def ssh_command(address: str, environ: Optional[Mapping[str, str]] = None) -> List[str]:
    """The command that reaches the daemon at ``ssh://[user@]host[:port][/remote/socket]``, as ltctl runs it:
    ``ssh [-p PORT] [user@]host -- ltctl dial-stdio [--socket PATH]``. ssh is ``$LTD_SSH`` (default ``ssh``),
    the remote ltctl ``$LTD_REMOTE_LTCTL`` (default ``ltctl``)."""
    env = os.environ if environ is None else environ
    rest = address[len("ssh://"):]
    remote_socket = None
    if "/" in rest:
        rest, remote_socket = rest[:rest.index("/")], rest[rest.index("/"):]
    user = None
    if "@" in rest:
        user, rest = rest.rsplit("@", 1)
    port = None
    if ":" in rest and not rest.endswith("]"):
        rest, port_text = rest.rsplit(":", 1)
        if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            raise ValueError("cannot use host %r: the port must be a number in 1-65535" % address)
        port = int(port_text)
    parts = [rest] + ([user] if user is not None else []) + ([remote_socket] if remote_socket else [])
    if any(not p or p.startswith("-") or any(c.isspace() or c == "'" for c in p) for p in parts):
        raise ValueError("cannot use host %r: the user, host and socket path may not be empty, start with '-', "
                         "or hold spaces or quotes" % address)
    command = shlex.split(env.get("LTD_SSH") or "ssh") or ["ssh"]
    if port is not None:
        command += ["-p", str(port)]
    command.append((user + "@" if user is not None else "") + rest)
    command += ["--", "'%s'" % (env.get("LTD_REMOTE_LTCTL") or "ltctl"), "dial-stdio"]
    if remote_socket:
        command += ["--socket", "'%s'" % remote_socket]
    return command


def _connect_ssh(address: str, timeout: Optional[float]):
    """A socket whose other end is ssh's standard input and output, and the ssh process."""
    command = ssh_command(address)
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        process = subprocess.Popen(command, stdin=theirs, stdout=theirs, close_fds=True)
    except OSError as exc:
        ours.close()
        raise DaemonUnavailable("cannot run %r to reach %s: %s; install an ssh client, or set LTD_SSH to one"
                                % (command[0], address, exc.strerror or exc), socket_path=address, errno=exc.errno) from None
    finally:
        theirs.close()
    ours.settimeout(timeout)
    return ours, process


class _Connection:
    """One socket with a line reader: a Unix socket, or a socket pair to ssh for an ``ssh://`` address."""

    def __init__(self, path: str, timeout: Optional[float]) -> None:
        self.path = path
        self.process: Optional[subprocess.Popen] = None
        if path.startswith("ssh://"):
            self.sock, self.process = _connect_ssh(path, timeout)
        else:
            self.sock = _connect(path, timeout)
        self.reader = self.sock.makefile("rb")

    def send(self, request: Mapping[str, Any]) -> None:
        self.sock.sendall(encode_request(request))

    def read_message(self) -> Optional[Dict[str, Any]]:
        """The next line as a dict, or None when the daemon closed the connection."""
        line = self.reader.readline()
        if not line:
            return None
        if not line.endswith(b"\n"):
            # EOF in the middle of a line: the daemon went away while writing.
            return None
        try:
            return decode_line(line)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ProtocolError("ltd at %s sent a line that is not a JSON object (%s): %r"
                                % (self.path, exc, line[:200])) from None

    def close(self) -> None:
        try:
            self.reader.close()
        finally:
            self.sock.close()
            if self.process is not None:
                # ssh sees its input end and exits; make sure it does not linger.
                try:
                    self.process.wait(timeout=2)
                except subprocess.TimeoutExpired:
                    self.process.terminate()
                    self.process.wait()


def _read_reply(conn: _Connection, request_id: int, op: str) -> Dict[str, Any]:
    while True:
        message = conn.read_message()
        if message is None:
            raise ConnectionLost("ltd at %s closed the connection before answering %r" % (conn.path, op))
        if message.get("id") == request_id or ("id" not in message and message.get("type") == "error"):
            if message.get("type") == "error":
                raise error_from_reply(message)
            return message
        # Anything else (an event, a reply to someone else's id) is not ours to handle here.


class Subscription:
    """The events of one job, from a `subscribe` request, ending with the job's `end` event.

    Iterate it like a generator. It ends after `end`, or at once if the subscription started past the job's last
    event (`complete`). `last_seq` is the seq of the last event delivered: after a `ConnectionLost`, resume with
    ``client.tail(name, since=sub.last_seq + 1)``. Closing it (or leaving a ``with`` block) closes its connection.
    """

    def __init__(self, conn: _Connection, job: str, reply: Dict[str, Any], since: int) -> None:
        self._conn: Optional[_Connection] = conn
        self.job = job
        self.reply = reply
        self.last_seq = since - 1
        self.complete = bool(reply.get("complete"))
        if self.complete:
            self.close()

    def __iter__(self) -> "Subscription":
        return self

    def __next__(self) -> Dict[str, Any]:
        conn = self._conn
        if conn is None:
            raise StopIteration
        try:
            event = conn.read_message()
        except BaseException:
            self.close()
            raise
        if event is None:
            self.close()
            raise ConnectionLost("ltd at %s closed the connection while following job %r after seq %d; resume with "
                                 "tail(%r, since=%d)" % (conn.path, self.job, self.last_seq, self.job,
                                                          self.last_seq + 1))
        kind = event.get("type")
        if kind == "error":
            self.close()
            raise error_from_reply(event)
        seq = event.get("seq")
        if isinstance(seq, int) and not isinstance(seq, bool):
            self.last_seq = seq
        if kind == "end":
            self.close()
        return event

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def __enter__(self) -> "Subscription":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


class Client:
    """A connection to ltd.

    ``Client()`` uses the default socket (``LTD_SOCKET``, else ``/run/ltd/ltd.sock`` as root, else
    ``$XDG_RUNTIME_DIR/ltd/ltd.sock``, else ``/tmp/ltd-$UID/ltd.sock``). ``Client(host="ssh://alice@box")`` (or
    ``LTD_HOST``) reaches a daemon on another machine through ssh, as ``ltctl --host`` does: a notebook on a laptop
    can watch a run on a server. `timeout` bounds each request/reply
    exchange in seconds (None: wait forever); subscriptions wait for events as long as the job takes unless
    `tail` is given a timeout.
    """

    def __init__(self, socket_path: Optional[str] = None, timeout: Optional[float] = 60.0,
                 host: Optional[str] = None) -> None:
        # A daemon on another machine: host="ssh://user@host[:port][/socket]" (or LTD_HOST), as ltctl --host.
        host = host or os.environ.get("LTD_HOST") or None
        if host and not host.startswith("ssh://"):
            raise ValueError("cannot use host %r: use ssh://user@host[:port]" % host)
        if host:
            ssh_command(host)  # refuse a malformed address now, not at the first request
        self.socket_path = host if host else (socket_path if socket_path else default_socket_path())
        self.timeout = timeout
        self._conn: Optional[_Connection] = None
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    # Request/reply plumbing.

    def request(self, op: str, **fields: Any) -> Dict[str, Any]:
        """Send one request and return the daemon's reply (raising the matching `LtdError` for an error reply).

        The typed methods below are built on this; use it for fields they do not expose.
        """
        with self._lock:
            request_id = next(self._ids)
            request = {"op": op, "id": request_id}
            request.update({k: v for k, v in fields.items() if v is not None})
            conn = self._conn
            if conn is not None and not self._send(conn, request, request_id, op, idle=True):
                # The daemon had closed our idle connection (restart, shutdown): nothing was read, so retry once.
                conn = None
            if conn is None:
                conn = self._conn = _Connection(self.socket_path, self.timeout)
                if not self._send(conn, request, request_id, op):
                    raise ConnectionLost("ltd at %s closed the connection while %r was being sent"
                                         % (self.socket_path, op))
            try:
                return _read_reply(conn, request_id, op)
            except LtdError as exc:
                if isinstance(exc, ConnectionLost) or exc.code in ("line_too_long", "shutting_down"):
                    self._drop()
                raise
            except OSError:
                self._drop()
                raise

    def _send(self, conn: _Connection, request: Dict[str, Any], request_id: int, op: str, idle: bool = False) -> bool:
        """Send `request`; False (connection dropped) if the daemon had closed the connection. When the daemon
        answered before closing (line_too_long on a huge request), its error is raised instead. On an `idle`
        connection, a `shutting_down` notice the daemon left before it went away is stale, not an answer."""
        try:
            conn.send(request)
            return True
        except OSError:
            pass
        try:
            _read_reply(conn, request_id, op)
        except ConnectionLost:
            pass
        except ShuttingDown:
            if not idle:
                self._drop()
                raise
        except LtdError:
            self._drop()
            raise
        except OSError:
            pass
        self._drop()
        return False

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def close(self) -> None:
        """Close the request connection (subscriptions have their own and close themselves)."""
        with self._lock:
            self._drop()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return "Client(socket_path=%r)" % (self.socket_path,)

    @staticmethod
    def _expect(reply: Dict[str, Any], kind: str, key: Optional[str] = None) -> Any:
        if reply.get("type") != kind:
            raise ProtocolError("expected a %r reply, got %r" % (kind, reply))
        if key is None:
            return reply
        if key not in reply:
            raise ProtocolError("the %r reply has no %r: %r" % (kind, key, reply))
        return reply[key]

    # Operations (docs/PROTOCOL.md, "Requests").

    def hello(self) -> Dict[str, Any]:
        """The daemon's greeting: ``protocol``, ``version``, the daemon's own ``pid``, ``uid``, ``gid`` and ``user``,
        ``peer``: this connection's ``pid``, ``uid``, ``gid`` and ``user`` as the daemon sees them, and
        ``capabilities``: what the daemon offers beyond protocol 1 as first released (absent from ltd 0.1.0)."""
        return self._expect(self.request("hello"), "hello")

    def capabilities(self) -> List[str]:
        """The daemon's capability list from `hello`; empty for a daemon older than the list (ltd 0.1.0)."""
        found = self.hello().get("capabilities")
        return [c for c in found if isinstance(c, str)] if isinstance(found, list) else []

    def require(self, capability: str, feature: str) -> None:
        """Raise `CapabilityMissing`, saying to upgrade the daemon, unless it offers `capability`.
        `feature` completes "cannot ...", e.g. "explain a step"."""
        reply = self.hello()
        found = reply.get("capabilities")
        if isinstance(found, list) and capability in found:
            return
        version = str(reply.get("version", "unknown"))
        from . import __version__
        raise CapabilityMissing(
            "ltd at %s is version %s, which cannot %s (its hello lists no %r capability); upgrade that daemon to "
            "ltd %s, this client's version, or newer" % (self.socket_path, version, feature, capability, __version__),
            capability=capability, daemon_version=version)

    def start(self, name: str, spec: Mapping[str, Any]) -> Dict[str, Any]:
        """Start job `name` from `spec` (see `ltd_client.spec`); returns its status object."""
        return self._expect(self.request("start", job=name, spec=dict(spec)), "started", "status")

    def list(self, all: bool = False) -> List[Dict[str, Any]]:
        """Your jobs' status objects, or with ``all=True`` every user's (each has ``full_name``, OWNER/NAME). A job
        whose directory ltd could not restore has state "damaged" and a "reason" (docs/PROTOCOL.md, "The status
        object"); it can only be deleted."""
        if all:
            self.require("owner_names", "list every user's jobs")
            return self._expect(self.request("list", all=True), "jobs", "jobs")
        return self._expect(self.request("list"), "jobs", "jobs")

    def status(self, name: str) -> Dict[str, Any]:
        """Job `name`'s status object: state, owner, iteration, epoch, progress, latest metrics. Every method that
        takes a job's `name` accepts ``NAME`` for one of yours and ``OWNER/NAME`` (e.g. ``alice/job1``) for
        another user's. A "damaged" job's has a "reason"."""
        return self._expect(self.request("status", job=name), "status", "status")

    def pause(self, name: str) -> Dict[str, Any]:
        return self._expect(self.request("pause", job=name), "ok")

    def resume(self, name: str) -> Dict[str, Any]:
        return self._expect(self.request("resume", job=name), "ok")

    def step(self, name: str, n: int = 1) -> Dict[str, Any]:
        """Advance a paused job by `n` optimizer steps."""
        return self._expect(self.request("step", job=name, count=n), "ok")

    def cancel(self, name: str) -> Dict[str, Any]:
        return self._expect(self.request("cancel", job=name), "ok")

    def delete(self, name: str) -> Dict[str, Any]:
        """Forget a job that is over (finished, cancelled, diverged or failed) and remove its log."""
        return self._expect(self.request("delete", job=name), "ok")

    def explain(self, name: str, iteration: int) -> Dict[str, Any]:
        """The worked example of step `iteration` of job `name` (0: where the initial weights came from).

        The daemon's engine computes it with the code that trains, in the job's precision: the rows with their
        predictions, errors and gradient parts, the loss, the gradients, the hyper-parameters, and the optimizer's
        update as named lines (``{"name", "formula", "value", "operations"}``) for the kernel and the bias, with the
        slots before and after. ``w_after`` and ``b_after`` are the job's weights bit for bit. Floats of a float32 job
        are the shortest decimals of the float32 values (``float32()`` gives the exact value). Raises `NotReached`
        for an iteration the job has not taken. See docs/PROTOCOL.md, "explain".
        """
        # A daemon older than explain would only say "unknown op"; say which side to upgrade instead.
        self.require("explain", "explain a step")
        return self._expect(self.request("explain", job=name, iteration=iteration), "explanation")

    def prune(self, older_than: Any = None, all_users: bool = False, dry_run: bool = False) -> Dict[str, Any]:
        """Delete your jobs that are over (finished, cancelled, diverged or failed), as `delete` would, and return the
        daemon's ``pruned`` reply: ``jobs`` removed (each with ``job``, ``full_name``, ``owner``, ``state``,
        ``ended``) and ``failed`` (the same and ``error``: the job stays). Running, paused and damaged jobs are never
        pruned. `older_than` (seconds, or a ``datetime.timedelta``) keeps the jobs that ended more recently;
        ``all_users=True`` prunes every user's jobs (root and the daemon's admin group only, else `PermissionDenied`);
        ``dry_run=True`` removes nothing and lists what would go. See docs/PROTOCOL.md, "prune"."""
        if isinstance(older_than, datetime.timedelta):
            # Whole seconds on the wire; rounding up never prunes a job younger than asked.
            older_than = math.ceil(older_than.total_seconds())
        self.require("prune", "prune jobs")
        reply = self.request("prune", older_than_seconds=older_than, all=True if all_users else None,
                             dry_run=True if dry_run else None)
        return self._expect(reply, "pruned")

    def stats(self) -> Dict[str, Any]:
        """The daemon's ``stats`` reply: what it holds and how close it is to each limit (``connections``,
        ``queued_bytes``, ``jobs`` by state, ``state_bytes``, ``restore``, ``limits`` as ``{"name", "limit",
        "used"}``, ``users``: your own row, or every user's for root and the admin group, as ``users_scope`` says).
        See docs/PROTOCOL.md, "stats"; ``ltctl top`` shows it."""
        self.require("stats", "report its statistics")
        return self._expect(self.request("stats"), "stats")

    def tail(self, name: str, since: int = 1, every: Optional[int] = None, types: Optional[Iterable[str]] = None,
             timeout: Optional[float] = None) -> Subscription:
        """Subscribe to job `name` from seq `since` and iterate its events until its `end` event.

        Subscribing happens now, so an unknown job raises `UnknownJob` here, not at the first iteration.
        `every=k` delivers only the step events whose iteration is a multiple of k; `types` limits the event types
        (``end`` always comes). `timeout` bounds each wait for an event (None: as long as the job takes).
        """
        conn = _Connection(self.socket_path, self.timeout)
        try:
            request: Dict[str, Any] = {"op": "subscribe", "id": 1, "job": name, "from": since}
            if every is not None:
                request["every"] = every
            if types is not None:
                request["types"] = list(types)
            conn.send(request)
            reply = self._expect(_read_reply(conn, 1, "subscribe"), "subscribed")
            conn.sock.settimeout(timeout)
        except BaseException:
            conn.close()
            raise
        return Subscription(conn, name, reply, since)

    def run(self, name: str, spec: Mapping[str, Any], **tail_options: Any) -> List[Dict[str, Any]]:
        """Start job `name` and return all its events once it is over (start, then tail from seq 1)."""
        self.start(name, spec)
        return list(self.tail(name, **tail_options))


