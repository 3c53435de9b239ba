"""Typed errors for ltd's protocol v1 error codes (docs/PROTOCOL.md, "Errors").

Every error line from the daemon becomes an instance of the `LtdError` subclass for its `code`, carrying the daemon's
`code`, `message` and, when the daemon sent them, `field` (invalid_spec) and `owner` (permission_denied).
"""

from typing import Any, Dict, Optional

__all__ = [
    "LtdError", "DaemonUnavailable", "ConnectionLost", "ProtocolError",
    "BadJSON", "LineTooLong", "UnknownOp", "BadRequest", "InvalidJobName", "InvalidSpec", "UnknownJob", "JobExists",
    "PermissionDenied", "WrongState", "JobActive", "TooManyJobs", "DiskLimit", "AlreadySubscribed", "ShuttingDown",
    "TooManyConnections", "Busy",
    "InternalError", "error_from_reply",
]


class LtdError(Exception):
    """An error reported by ltd, or a failure to talk to it.

    `code` is the daemon's wire code (``"unknown_job"``, ...); errors raised by the client itself use codes that
    the daemon never sends (``"connection_failed"``, ``"connection_lost"``, ``"protocol"``).
    """

    code = "error"

    def __init__(self, message: str, code: Optional[str] = None, field: Optional[str] = None,
                 owner: Optional[int] = None, reply: Optional[Dict[str, Any]] = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.field = field
        self.owner = owner
        self.reply = reply

    def __str__(self) -> str:
        return "%s: %s" % (self.code, self.message)

    def __repr__(self) -> str:
        extra = ""
        if self.field is not None:
            extra += ", field=%r" % self.field
        if self.owner is not None:
            extra += ", owner=%r" % self.owner
        return "%s(code=%r, message=%r%s)" % (type(self).__name__, self.code, self.message, extra)


class DaemonUnavailable(LtdError, ConnectionError):
    """The socket could not be opened: no daemon listens there, or we may not open it."""

    code = "connection_failed"

    def __init__(self, message: str, socket_path: str, errno: Optional[int] = None) -> None:
        super().__init__(message)
        self.socket_path = socket_path
        self.errno = errno


class CapabilityMissing(LtdError):
    """The daemon is older than a feature this client was asked to use: its hello lists no such capability
    (docs/PROTOCOL.md, "Compatibility"). Upgrade the daemon, or do without the feature."""

    code = "capability_missing"

    def __init__(self, message: str, capability: str, daemon_version: str) -> None:
        super().__init__(message)
        self.capability = capability
        self.daemon_version = daemon_version


class ConnectionLost(LtdError, ConnectionError):
    """The daemon closed the connection before the reply or the job's `end` event arrived."""

    code = "connection_lost"


class ProtocolError(LtdError):
    """The daemon sent something protocol v1 does not allow (not JSON, not an object, a reply of the wrong type)."""

    code = "protocol"


class BadJSON(LtdError):
    code = "bad_json"


class LineTooLong(LtdError):
    code = "line_too_long"


class UnknownOp(LtdError):
    code = "unknown_op"


class BadRequest(LtdError):
    code = "bad_request"


class InvalidJobName(LtdError, ValueError):
    code = "invalid_job_name"


class InvalidSpec(LtdError, ValueError):
    """The spec failed validation; `field` is the JSON path of the offending value (``"optimizer.rho"``)."""

    code = "invalid_spec"


class UnknownJob(LtdError, LookupError):
    code = "unknown_job"


class JobExists(LtdError):
    code = "job_exists"


class PermissionDenied(LtdError, PermissionError):
    """Control of another user's job; `owner` is the job owner's uid."""

    code = "permission_denied"


class WrongState(LtdError):
    code = "wrong_state"


class JobActive(LtdError):
    code = "job_active"


class TooManyJobs(LtdError):
    code = "too_many_jobs"


class DiskLimit(LtdError):
    """The job cannot fit in the daemon's disk limits (`ltd --max-log-bytes`, `--max-state-bytes`); the message gives
    the numbers."""

    code = "disk_limit"


class NotReached(LtdError):
    """`explain` asked for an iteration the job has not taken (yet)."""

    code = "not_reached"


class AlreadySubscribed(LtdError):
    code = "already_subscribed"


class ShuttingDown(LtdError):
    code = "shutting_down"


class TooManyConnections(LtdError):
    """The daemon's connection limit, in all or for this uid, is reached; the connection is closed."""

    code = "too_many_connections"


class Busy(LtdError):
    """The daemon holds as many unfinished request lines as it will; the connection is closed. Try again."""

    code = "busy"


class InternalError(LtdError):
    code = "internal"


_BY_CODE = {cls.code: cls for cls in (
    BadJSON, LineTooLong, UnknownOp, BadRequest, InvalidJobName, InvalidSpec, UnknownJob, JobExists,
    PermissionDenied, WrongState, JobActive, TooManyJobs, DiskLimit, NotReached, AlreadySubscribed, ShuttingDown,
    TooManyConnections, Busy, InternalError)}


def error_from_reply(reply: Dict[str, Any]) -> LtdError:
    """The exception for an error line `{"type":"error","code":...,"message":...}`.

    A code this client does not know (a newer daemon) still gives an `LtdError` with that code.
    """
    code = reply.get("code")
    message = reply.get("message")
    if not isinstance(message, str):
        message = "the daemon reported an error without a message: %r" % (reply,)
    field = reply.get("field")
    owner = reply.get("owner")
    cls = _BY_CODE.get(code, LtdError) if isinstance(code, str) else LtdError
    return cls(message, code=code if isinstance(code, str) else "error",
               field=field if isinstance(field, str) else None,
               owner=owner if isinstance(owner, int) and not isinstance(owner, bool) else None,
               reply=reply)
