"""Helpers for testing workers: run a worker in-process on a list of messages, and TEST-ONLY
hooks that make a worker break the protocol on purpose (for a host's tests).

>>> from polyglot_worker import Worker
>>> w = Worker("demo", version="1.0.0")
>>> @w.method
... def double(x: int) -> int:
...     return 2 * x
>>> run_session(w, [{"id": 1, "method": "double", "params": [21]}]).responses[1]["result"]
42
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Tuple

from .codec import DEFAULT_MAX_FRAME, JSON, Frame, get_codec
from .context import Context
from .envelope import Handshake, parse_handshake
from .errors import DecodeError, Id
from .worker import Worker


def write_raw(ctx: Context, data: bytes) -> None:
    """TEST ONLY: writes `data` as-is to the protocol stream (in order with the worker's
    other output), e.g. a line that is not a frame. Never needed by a real method."""
    ctx._write_raw(data)


def write_message(ctx: Context, message: Dict[str, Any]) -> None:
    """TEST ONLY: writes `message` as one frame of the worker's codec, unchecked against
    the calls in flight (e.g. a response to an id the host never issued)."""
    ctx._write_raw(ctx._conn.encode_frame(message))


def encode_stream(messages: Iterable[Any], codec: str = JSON) -> bytes:
    """The byte stream carrying `messages` (protocol values) as frames of `codec`."""
    c = get_codec(codec)
    return b"".join(c.frame(c.encode(m)) for m in messages)


def split_output(data: bytes, codec: str = JSON, max_frame: int = DEFAULT_MAX_FRAME) -> Tuple[Handshake, List[Any]]:
    """Splits a worker's output into its handshake and the decoded messages after it.

    Raises `polyglot_worker.ProtocolError` when the output breaks the protocol."""
    nl = data.find(b"\n")
    if nl < 0:
        raise DecodeError("the output holds no handshake line")
    handshake = parse_handshake(data[:nl])
    c = get_codec(codec)
    decoder = c.frame_decoder(max_frame)
    messages = []
    for event in decoder.feed(data[nl + 1 :]):
        if not isinstance(event, Frame):
            raise DecodeError(f"the worker wrote a {event.size}-byte frame over the limit")
        messages.append(c.decode(event.payload))
    if decoder.finish() is not None:
        raise DecodeError("the output ends inside a frame")
    return handshake, messages


@dataclass
class Session:
    """What a worker wrote in `run_session`."""

    status: int
    handshake: Handshake
    messages: List[Any]
    responses: Dict[Id, Dict[str, Any]] = field(default_factory=dict)
    """The responses (messages with `result` or `error`), by id."""


def run_session(
    worker: Worker,
    messages: Iterable[Any],
    *,
    codec: str = JSON,
    max_frame: int = DEFAULT_MAX_FRAME,
    shutdown: bool = True,
) -> Session:
    """Feeds `messages` (requests as protocol values) to `worker` through its real framing
    and dispatch, in this process, and returns what it wrote.

    With `shutdown` (the default) a `$shutdown` follows the messages, so every call is
    answered before the input ends (a worker whose input ends stops at once, abandoning
    calls still running)."""
    stream = list(messages)
    if shutdown:
        stream.append({"method": "$shutdown"})
    out = io.BytesIO()
    status = worker.run(io.BytesIO(encode_stream(stream, codec)), out, codec=codec, max_frame=max_frame)
    handshake, written = split_output(out.getvalue(), codec, max_frame)
    session = Session(status, handshake, written)
    for msg in written:
        if isinstance(msg, dict) and ("result" in msg or "error" in msg) and "id" in msg:
            session.responses[msg["id"]] = msg
    return session
