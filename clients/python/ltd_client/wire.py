"""Protocol v1 framing and numbers: one JSON object per line, non-finite values as strings.

JSON has no NaN or infinity, so ltd writes them as the strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"``
(docs/PROTOCOL.md, "Numbers"). `decode_line` turns those strings back into floats wherever a number belongs, and
leaves the protocol's string fields alone: a job may well be named ``NaN``.
"""

import json
import math
import os
import struct
from typing import Any, Callable, Dict, Mapping, Optional

__all__ = ["NON_FINITE", "STRING_FIELDS", "decode_line", "encode_request", "restore_non_finite",
           "default_socket_path", "float32"]

NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}

# Fields whose values are strings by definition (requests, replies, events, status objects, specs, errors).
# Everything else that holds one of the three non-finite strings is a number.
STRING_FIELDS = frozenset({
    "type", "op", "job", "state", "message", "code", "field", "version", "created", "name", "precision",
    "initializer", "on_divergence", "validation_mode",
})


def restore_non_finite(value: Any, key: Optional[str] = None) -> Any:
    """`value` with every ``"NaN"`` / ``"Infinity"`` / ``"-Infinity"`` string in a numeric position made a float."""
    if isinstance(value, str):
        if key not in STRING_FIELDS and value in NON_FINITE:
            return NON_FINITE[value]
        return value
    if isinstance(value, dict):
        return {k: restore_non_finite(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [restore_non_finite(v, key) for v in value]
    return value


def decode_line(line: Any) -> Dict[str, Any]:
    """Parse one NDJSON line (str or bytes, with or without its newline) into a dict, restoring non-finite numbers.

    Raises ValueError if the line is not a JSON object.
    """
    if isinstance(line, (bytes, bytearray)):
        line = bytes(line).decode("utf-8")
    obj = json.loads(line)
    if not isinstance(obj, dict):
        raise ValueError("expected a JSON object, got %s" % type(obj).__name__)
    return restore_non_finite(obj)


def _finite_or_string(value: Any) -> Any:
    if not isinstance(value, (str, bytes, dict, list, tuple)) and callable(getattr(value, "tolist", None)):
        # numpy arrays and scalars, pandas Series, array.array: their plain Python values.
        value = value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: _finite_or_string(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_string(v) for v in value]
    return value


def encode_request(request: Mapping[str, Any]) -> bytes:
    """One request line: compact JSON, UTF-8, newline-terminated. Non-finite floats become the protocol's strings
    (the daemon then rejects them in data with a message naming the field, rather than failing to parse). Anything
    with a ``tolist()`` (numpy arrays and scalars, pandas Series) is sent as its plain values."""
    text = json.dumps(_finite_or_string(dict(request)), separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text.encode("utf-8") + b"\n"


def default_socket_path(environ: Optional[Mapping[str, str]] = None, uid: Optional[int] = None,
                        exists: Callable[[str], bool] = os.path.exists) -> str:
    """Where ltd listens unless told otherwise; the same rule as ltd and ltctl.

    ``LTD_SOCKET``, else ``/run/ltd/ltd.sock`` as root, else ``$XDG_RUNTIME_DIR/ltd/ltd.sock``, else
    ``/tmp/ltd-$UID/ltd.sock``; a user whose own socket does not exist reaches the system service's
    ``/run/ltd/ltd.sock`` when that exists.
    """
    env = os.environ if environ is None else environ
    if uid is None:
        uid = os.getuid()
    explicit = env.get("LTD_SOCKET")
    if explicit:
        return explicit
    if uid == 0:
        return SYSTEM_SOCKET
    runtime = env.get("XDG_RUNTIME_DIR")
    own = runtime + "/ltd/ltd.sock" if runtime else "/tmp/ltd-%d/ltd.sock" % uid
    if not exists(own) and exists(SYSTEM_SOCKET):
        return SYSTEM_SOCKET
    return own


SYSTEM_SOCKET = "/run/ltd/ltd.sock"


_F32 = struct.Struct("<f")


def float32(value: float) -> float:
    """`value` rounded to the nearest float32, as a Python float (exact: every float32 is a double).

    ltd writes a float32 job's numbers as the shortest decimal that round-trips in float32 (``8.595638``); this
    recovers the exact float32 Keras holds (8.595638275146484). Non-finite values pass through; a finite value too
    large for float32 becomes an infinity of its sign, as a float32 conversion does.
    """
    if not math.isfinite(value):
        return value
    try:
        return _F32.unpack(_F32.pack(value))[0]
    except OverflowError:
        # struct refuses exactly the values that round to infinity in float32.
        return math.copysign(math.inf, value)
