"""The protocol's messages: parse and validate them, and build them (docs/protocol.md,
sections 2 and 4).

Worker side: `parse_request` validates what the host sends; `result_response`,
`error_response`, `progress_message`, `log_message` and `build_handshake` build what the
worker sends, `id` first as the spec asks of writers.

Host side, for tests and tools: `parse_message` validates what a worker sends, and
`parse_handshake` / `check_handshake` apply the host's handshake rules, so a worker's
author can check a worker's output without a host.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

from .codec import CODECS, JSON
from .errors import Id, InvalidHandshake, InvalidMessage, InvalidRequest
from .values import INT_MIN, UINT_MAX, type_name

PROTOCOL_VERSION = 1
"""The protocol version this SDK speaks (`polyglot` in the handshake)."""

SUPPORTED_VERSIONS = (PROTOCOL_VERSION,)
"""Every protocol version this SDK speaks."""

LOG_LEVELS = ("trace", "debug", "info", "warn", "error")
"""The levels of a log message, least severe first."""

_MISSING = object()


def now_ms() -> int:
    """Milliseconds since the Unix epoch: the unit of every `timestamp`."""
    return time.time_ns() // 1_000_000


def is_id(value: Any) -> bool:
    """Whether `value` is a valid id: a 64-bit integer (signed or unsigned) or a string."""
    if isinstance(value, str):
        return True
    return isinstance(value, int) and not isinstance(value, bool) and INT_MIN <= value <= UINT_MAX


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# ------------------------------------------------------------------ requests
@dataclass(frozen=True)
class Request:
    """A validated request. `id` is `None` for a notification."""

    method: str
    params: Any = None
    id: Optional[Id] = None
    timestamp: Optional[int] = None
    timeout_ms: Optional[int] = None

    @property
    def notification(self) -> bool:
        """A request without `id`: the worker must not answer it."""
        return self.id is None


def parse_request(obj: Any) -> Request:
    """Validates a decoded request.

    Raises `InvalidRequest` naming the broken field; its `id` is the request's id when that
    could be read, so the caller can answer `INVALID_REQUEST`.

    >>> parse_request({"id": 7, "method": "upper", "params": ["hi"]}).params
    ['hi']
    """
    if not isinstance(obj, dict):
        raise InvalidRequest(f"a request must be an object, got {type_name(obj)}")
    raw_id = obj.get("id", _MISSING)
    id: Optional[Id] = None
    if raw_id is not _MISSING:
        if not is_id(raw_id):
            raise InvalidRequest(
                f"id must be an integer or a string, got {type_name(raw_id)}"
                + (" out of the 64-bit range" if _is_int(raw_id) else "")
            )
        id = raw_id
    method = obj.get("method", _MISSING)
    if method is _MISSING:
        raise InvalidRequest("missing method", id)
    if not isinstance(method, str):
        raise InvalidRequest(f"method must be a string, got {type_name(method)}", id)
    timestamp = obj.get("timestamp")
    if timestamp is not None and not _is_int(timestamp):
        raise InvalidRequest(f"timestamp must be an integer, got {type_name(timestamp)}", id)
    timeout_ms = obj.get("timeoutMs")
    if timeout_ms is not None and not (_is_int(timeout_ms) and timeout_ms >= 0):
        raise InvalidRequest(f"timeoutMs must be a non-negative integer, got {timeout_ms!r}", id)
    return Request(method, obj.get("params"), id, timestamp, timeout_ms)


def request(method: str, params: Any = None, id: Optional[Id] = None, **extra: Any) -> Dict[str, Any]:
    """Builds a request (or a notification when `id` is `None`), `id` first. For tests and
    tools that play the host."""
    msg: Dict[str, Any] = {} if id is None else {"id": id}
    msg["method"] = method
    if params is not None:
        msg["params"] = params
    msg.update(extra)
    return msg


# ------------------------------------------------------------------ worker messages
def result_response(id: Id, result: Any, execution_us: Optional[int] = None) -> Dict[str, Any]:
    """A response carrying `result` for call `id`; `execution_us` is the time spent in the
    method, in microseconds."""
    msg: Dict[str, Any] = {"id": id, "result": result, "timestamp": now_ms()}
    if execution_us is not None:
        msg["executionTime"] = execution_us
    return msg


def error_response(
    id: Id, code: str, message: str, data: Any = None, execution_us: Optional[int] = None
) -> Dict[str, Any]:
    """A response carrying error `code` for call `id`."""
    error: Dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    msg: Dict[str, Any] = {"id": id, "error": error, "timestamp": now_ms()}
    if execution_us is not None:
        msg["executionTime"] = execution_us
    return msg


def progress_message(id: Id, progress: Any) -> Dict[str, Any]:
    """A progress message for call `id`."""
    return {"id": id, "progress": progress}


def log_message(level: str, message: str, fields: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """A log message. Raises `ValueError` for a level not in `LOG_LEVELS`."""
    if level not in LOG_LEVELS:
        raise ValueError(f"log level must be one of {', '.join(LOG_LEVELS)}, got {level!r}")
    log: Dict[str, Any] = {"level": level, "message": str(message)}
    if fields:
        log["fields"] = dict(fields)
    return {"log": log}


@dataclass(frozen=True)
class ErrorObject:
    """The `error` of a response."""

    code: str
    message: str
    data: Any = None


@dataclass(frozen=True)
class Response:
    """A validated response: exactly one of `result` / `error` is meaningful (`error` is
    `None` for a result, which may itself be `None`)."""

    id: Id
    result: Any = None
    error: Optional[ErrorObject] = None
    timestamp: Optional[int] = None
    execution_time: Optional[int] = None
    kind: str = field(default="response", init=False)


@dataclass(frozen=True)
class Progress:
    """A validated progress message."""

    id: Id
    progress: Any
    kind: str = field(default="progress", init=False)


@dataclass(frozen=True)
class Log:
    """A validated log message."""

    level: str
    message: str
    fields: Optional[Dict[str, Any]] = None
    kind: str = field(default="log", init=False)


WorkerMessage = Union[Response, Progress, Log]


def parse_message(obj: Any) -> WorkerMessage:
    """Validates a decoded message from a worker (what a host reads).

    Raises `InvalidMessage` naming the broken field.
    """
    if not isinstance(obj, dict):
        raise InvalidMessage(f"a message must be an object, got {type_name(obj)}")
    if "log" in obj and "id" not in obj:
        return _parse_log(obj["log"])
    if "id" not in obj:
        raise InvalidMessage("missing id: a response or progress message needs one")
    id = obj["id"]
    if not is_id(id):
        raise InvalidMessage(f"id must be an integer or a string, got {type_name(id)}")
    has_result, has_error = "result" in obj, "error" in obj
    if "progress" in obj and not (has_result or has_error):
        return Progress(id, obj["progress"])
    if has_result and has_error:
        raise InvalidMessage("a response holds a result or an error, not both")
    if not (has_result or has_error):
        raise InvalidMessage("a response needs a result or an error")
    timestamp = obj.get("timestamp")
    if timestamp is not None and not _is_int(timestamp):
        raise InvalidMessage(f"timestamp must be an integer, got {type_name(timestamp)}")
    execution = obj.get("executionTime")
    if execution is not None and not (_is_int(execution) and execution >= 0):
        raise InvalidMessage(f"executionTime must be a non-negative integer, got {execution!r}")
    if has_result:
        return Response(id, result=obj["result"], timestamp=timestamp, execution_time=execution)
    return Response(id, error=_parse_error(obj["error"]), timestamp=timestamp, execution_time=execution)


def _parse_error(error: Any) -> ErrorObject:
    if not isinstance(error, dict):
        raise InvalidMessage(f"error must be an object, got {type_name(error)}")
    code = error.get("code")
    if not isinstance(code, str):
        raise InvalidMessage("error.code must be a string" if "code" in error else "missing error.code")
    message = error.get("message")
    if not isinstance(message, str):
        raise InvalidMessage(
            "error.message must be a string" if "message" in error else "missing error.message"
        )
    return ErrorObject(code, message, error.get("data"))


def _parse_log(log: Any) -> Log:
    if not isinstance(log, dict):
        raise InvalidMessage(f"log must be an object, got {type_name(log)}")
    level = log.get("level")
    if level not in LOG_LEVELS:
        raise InvalidMessage(f"log level must be one of {', '.join(LOG_LEVELS)}, got {level!r}")
    message = log.get("message")
    if not isinstance(message, str):
        raise InvalidMessage("log message must be a string")
    fields = log.get("fields")
    if fields is not None and not isinstance(fields, dict):
        raise InvalidMessage(f"log fields must be an object, got {type_name(fields)}")
    return Log(level, message, fields)


# ------------------------------------------------------------------ handshake
@dataclass(frozen=True)
class Handshake:
    """A validated handshake, defaults filled in."""

    polyglot: int
    module: str
    version: str
    methods: List[str]
    codec: str = JSON
    max_concurrency: int = 1
    language: Optional[str] = None
    pid: Optional[int] = None

    def to_dict(self) -> Dict[str, Any]:
        """The handshake's fields as they go on the wire."""
        msg: Dict[str, Any] = {
            "polyglot": self.polyglot,
            "module": self.module,
            "version": self.version,
        }
        if self.language is not None:
            msg["language"] = self.language
        msg["codec"] = self.codec
        msg["methods"] = list(self.methods)
        msg["maxConcurrency"] = self.max_concurrency
        if self.pid is not None:
            msg["pid"] = self.pid
        return msg

    def to_line(self) -> bytes:
        """The handshake as the worker sends it: one JSON line, ended by `\\n`."""
        text = json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=False)
        return text.encode("utf-8") + b"\n"


def build_handshake(
    module: str,
    version: str,
    methods: Sequence[str],
    *,
    codec: str = JSON,
    max_concurrency: int = 1,
    language: Optional[str] = "python",
    pid: Optional[int] = None,
) -> Handshake:
    """Builds (and validates) a worker's handshake. `methods` are kept in the given order.

    Raises `InvalidHandshake` when a field is invalid.
    """
    hs = Handshake(
        PROTOCOL_VERSION, module, version, list(methods), codec, max_concurrency, language, pid
    )
    return parse_handshake(hs.to_line())


def parse_handshake(line: Union[str, bytes]) -> Handshake:
    """Parses and validates a handshake line (with or without its `\\n`): required fields,
    types, defaults, and a protocol version this SDK speaks. Unknown fields are ignored.

    Raises `InvalidHandshake` naming the broken field.

    >>> parse_handshake('{"polyglot":1,"module":"m","version":"1","methods":[]}').max_concurrency
    1
    """
    if isinstance(line, bytes):
        try:
            line = line.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidHandshake("handshake is not UTF-8 JSON") from None
    try:
        obj = json.loads(line)
    except ValueError as exc:
        raise InvalidHandshake(f"handshake is not a JSON line: {exc}") from None
    if not isinstance(obj, dict):
        raise InvalidHandshake(f"handshake must be a JSON object, got {type_name(obj)}")

    def get(name: str, check: Any, expected: str, default: Any = _MISSING) -> Any:
        value = obj.get(name)
        if value is None:
            if default is _MISSING:
                raise InvalidHandshake(f"handshake is missing {name!r} ({expected})")
            return default
        if not check(value):
            raise InvalidHandshake(f"handshake field {name!r} must be {expected}, got {value!r}")
        return value

    polyglot = get("polyglot", _is_int, "the protocol version, an integer")
    if polyglot not in SUPPORTED_VERSIONS:
        raise InvalidHandshake(
            f"worker speaks protocol version {polyglot}; this side speaks "
            + ", ".join(str(v) for v in SUPPORTED_VERSIONS)
        )
    module = get("module", lambda v: isinstance(v, str), "a string")
    version = get("version", lambda v: isinstance(v, str), "a string")
    methods = get(
        "methods",
        lambda v: isinstance(v, list) and all(isinstance(m, str) for m in v),
        "an array of strings",
    )
    codec = get("codec", lambda v: v in CODECS, " or ".join(repr(c) for c in CODECS), JSON)
    max_concurrency = get(
        "maxConcurrency", lambda v: _is_int(v) and v >= 1, "an integer >= 1", 1
    )
    language = get("language", lambda v: isinstance(v, str), "a string", None)
    pid = get("pid", _is_int, "an integer", None)
    return Handshake(polyglot, module, version, methods, codec, max_concurrency, language, pid)


def check_handshake(
    handshake: Handshake, *, name: str, codec: str = JSON, capabilities: Sequence[str] = ()
) -> None:
    """Applies the host's manifest rules (docs/protocol.md, section 2) to a parsed handshake:
    the module name, the codec, and every capability served.

    Raises `InvalidHandshake` saying which rule was broken.
    """
    if handshake.module != name:
        raise InvalidHandshake(f"worker serves module {handshake.module!r}, the manifest names {name!r}")
    if handshake.codec != codec:
        raise InvalidHandshake(
            f"worker speaks codec {handshake.codec!r}, the manifest asks for {codec!r}"
        )
    missing = [c for c in capabilities if c not in handshake.methods]
    if missing:
        raise InvalidHandshake(
            "worker does not serve the manifest's capabilities: " + ", ".join(missing)
        )
