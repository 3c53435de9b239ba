"""Client.stats() and Client.prune() against the real ltd (docs/PROTOCOL.md, "stats" and "prune"), and against a
daemon older than both."""

import datetime
import json
import os
import pwd
import socket
import threading

import pytest

from ltd_client import CapabilityMissing, PermissionDenied, UnknownJob
from ltd_client.spec import colab_example
from ltd_client.wire import decode_line

from test_e2e import FINAL_STATES, WAIT, python_as_nobody_or_skip, run_client_as_nobody, wait_for


def finished_job(client, name):
    client.start(name, colab_example())
    return wait_for(client, name, lambda s: s["state"] in FINAL_STATES)


def test_stats_counts_what_the_daemon_holds(fresh_ltd):
    daemon = fresh_ltd(args=["--max-jobs", "7"]).start()
    with daemon.client() as c:
        finished_job(c, "done1")
        c.start("held", colab_example(paused=True))
        stats = c.stats()
        assert stats["type"] == "stats" and stats["pid"] == daemon.process.pid
        assert stats["jobs"]["total"] == 2
        assert (stats["jobs"]["finished"], stats["jobs"]["paused"]) == (1, 1)
        assert stats["connections"]["open"] >= 1
        assert {"name": "max-jobs", "limit": 7, "used": 2} in stats["limits"]
        assert stats["users_scope"] == "all"  # root sees every user's row
        assert [(u["uid"], u["jobs"], u["unfinished"]) for u in stats["users"]] == [(os.getuid(), 2, 1)]
        c.cancel("held")


def test_prune_removes_only_jobs_that_are_over_and_old_enough(fresh_ltd):
    daemon = fresh_ltd().start()
    with daemon.client() as c:
        ended = finished_job(c, "old1")["ended"]
        c.start("held", colab_example(paused=True))
        # Ended seconds ago: an hour's margin keeps it, whether given as seconds or as a timedelta.
        for older_than in (3600, datetime.timedelta(hours=1)):
            kept = c.prune(older_than=older_than)
            assert (kept["jobs"], kept["failed"], kept["older_than_seconds"]) == ([], [], 3600)
        would = c.prune(dry_run=True)
        assert would["dry_run"] is True
        assert [(j["job"], j["state"], j["ended"]) for j in would["jobs"]] == [("old1", "finished", ended)]
        assert c.status("old1")["state"] == "finished"  # a dry run removes nothing
        pruned = c.prune()
        assert pruned["dry_run"] is False and pruned["failed"] == []
        me = pwd.getpwuid(os.getuid()).pw_name
        assert [(j["job"], j["full_name"], j["owner"]) for j in pruned["jobs"]] == [("old1", me + "/old1", os.getuid())]
        with pytest.raises(UnknownJob):
            c.status("old1")
        assert c.status("held")["state"] == "paused"  # never a paused job
        assert c.prune(all_users=True)["jobs"] == []  # root may ask for everyone's; nothing else is over
        c.cancel("held")


def test_prune_of_every_user_is_for_root_and_the_admin_group(fresh_ltd):
    python = python_as_nobody_or_skip("prune permission test")
    daemon = fresh_ltd().start()
    with daemon.client() as c:
        finished_job(c, "roots")
    script = (
        "import json, sys\n"
        "from ltd_client import Client, PermissionDenied\n"
        "c = Client(sys.argv[1])\n"
        "stats = c.stats()\n"
        "out = {'scope': stats['users_scope'], 'users': [u['uid'] for u in stats['users']],\n"
        "       'total': stats['jobs']['total'], 'own': c.prune()['jobs']}\n"
        "try:\n"
        "    c.prune(all_users=True)\n"
        "    out['all'] = 'allowed'\n"
        "except PermissionDenied as e:\n"
        "    out['all'] = e.code\n"
        "print(json.dumps(out))\n")
    seen = run_client_as_nobody(python, daemon.socket_path, script)
    # Its own row only (its connection), never root's; the totals are everyone's.
    assert seen == {"scope": "own", "users": [65534], "total": 1, "own": [], "all": "permission_denied"}
    with daemon.client() as c:
        assert c.status("roots")["state"] == "finished"  # nothing removed


class OldDaemon:
    """A daemon as ltd 0.1.0 answered: a hello without capabilities, `unknown_op` for what it does not know."""

    def __init__(self, path):
        self.ops = []
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(path)
        self.listener.listen(4)
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with conn, conn.makefile("rb") as lines:
                for line in lines:
                    request = decode_line(line)
                    self.ops.append(request["op"])
                    if request["op"] == "hello":
                        reply = {"type": "hello", "id": request["id"], "protocol": 1, "version": "0.1.0",
                                 "pid": os.getpid(), "uid": os.getuid()}
                    else:
                        reply = {"type": "error", "id": request["id"], "code": "unknown_op",
                                 "message": "unknown op %r" % request["op"]}
                    conn.sendall(json.dumps(reply).encode() + b"\n")

    def close(self):
        self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()


@pytest.mark.parametrize("call, capability, feature", [
    (lambda c: c.stats(), "stats", "report its statistics"),
    (lambda c: c.prune(dry_run=True), "prune", "prune jobs"),
])
def test_a_daemon_without_the_capability_says_to_upgrade_it(tmp_path, call, capability, feature):
    from ltd_client import Client
    old = OldDaemon(str(tmp_path / "old.sock"))
    try:
        with Client(str(tmp_path / "old.sock"), timeout=WAIT) as c:
            with pytest.raises(CapabilityMissing) as caught:
                call(c)
        assert (caught.value.capability, caught.value.daemon_version) == (capability, "0.1.0")
        assert "version 0.1.0, which cannot %s" % feature in caught.value.message
        assert "upgrade that daemon" in caught.value.message
        assert old.ops == ["hello"]  # the op itself is never sent
    finally:
        old.close()
