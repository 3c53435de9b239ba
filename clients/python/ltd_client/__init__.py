"""ltd_client: watch ltd train a one-feature linear regression exactly as Keras does, step by step, from Python.

    from ltd_client import Client, to_rows
    from ltd_client.spec import colab_example

    client = Client()
    client.start("job1", colab_example())
    rows = to_rows(client.tail("job1"))      # one dict per optimizer step; pandas.DataFrame(rows) if you like

Standard library only. `ltd_client.plot` draws with matplotlib when it is installed.
"""

from .client import Client, Subscription
from .daemon import ensure_daemon
from .errors import (AlreadySubscribed, BadJSON, BadRequest, Busy, CapabilityMissing, ConnectionLost, DaemonUnavailable,
                     DiskLimit, InternalError,
                     InvalidJobName, InvalidSpec, JobActive, JobExists, LineTooLong, LtdError, NotReached,
                     PermissionDenied, ProtocolError, ShuttingDown, TooManyConnections, TooManyJobs, UnknownJob,
                     UnknownOp, WrongState)
from .rows import STEP_COLUMNS, read_events, to_rows
from .wire import decode_line, default_socket_path, float32

__version__ = "0.2.0"
PROTOCOL_VERSION = 1

__all__ = [
    "Client", "Subscription", "ensure_daemon", "to_rows", "read_events", "STEP_COLUMNS", "decode_line", "default_socket_path",
    "float32", "PROTOCOL_VERSION",
    "LtdError", "CapabilityMissing", "DaemonUnavailable", "ConnectionLost", "ProtocolError", "BadJSON", "LineTooLong", "UnknownOp",
    "BadRequest", "InvalidJobName", "InvalidSpec", "UnknownJob", "JobExists", "PermissionDenied", "WrongState",
    "JobActive", "TooManyJobs", "DiskLimit", "NotReached", "AlreadySubscribed", "ShuttingDown", "TooManyConnections",
    "Busy", "InternalError",
]
