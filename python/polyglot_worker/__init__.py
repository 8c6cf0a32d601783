"""polyglot-worker: write polyglot workers in Python.

A worker is a process that serves one module's methods to polyglot-host over the wire
protocol of docs/protocol.md (JSON lines or length-prefixed MessagePack on stdio or a Unix
socket). This package is stdlib-only; the MessagePack codec needs `msgpack`.

Layout:
- `worker`: `Worker`, method registration, dispatch, serving (stdio, socket, in-process).
- `context`: `Context`, a call's id, progress, logs and cancellation.
- `envelope`: requests, responses, progress, logs and the handshake: build and validate.
- `codec`: framing and the two codecs; a frame decoder that never buffers oversize frames.
- `values`: protocol values in Python and their JSON form (`{"$bytes": ...}`).
- `transport`: the reader and writer threads, stdio takeover, socket, parent-death signal.
- `errors`: `MethodError`, `ErrorCode` and the protocol errors.
- `testing`: run a worker in-process on messages; test-only hooks that break the protocol.

Example::

    from polyglot_worker import Worker

    worker = Worker("text-python", version="1.0.0")

    @worker.method
    def upper(text: str) -> str:
        return text.upper()

    if __name__ == "__main__":
        worker.serve()
"""

from .codec import CODECS, DEFAULT_MAX_FRAME, Codec, get_codec
from .context import Context
from .envelope import (
    LOG_LEVELS,
    PROTOCOL_VERSION,
    Handshake,
    Request,
    build_handshake,
    check_handshake,
    parse_handshake,
    parse_message,
    parse_request,
)
from .errors import (
    DecodeError,
    EncodeError,
    ErrorCode,
    FrameTooLarge,
    Id,
    InvalidHandshake,
    InvalidMessage,
    InvalidRequest,
    MethodError,
    MissingDependency,
    ProtocolError,
)
from .worker import Worker

__version__ = "0.1.0"

__all__ = [
    "CODECS",
    "DEFAULT_MAX_FRAME",
    "LOG_LEVELS",
    "PROTOCOL_VERSION",
    "Codec",
    "Context",
    "DecodeError",
    "EncodeError",
    "ErrorCode",
    "FrameTooLarge",
    "Handshake",
    "Id",
    "InvalidHandshake",
    "InvalidMessage",
    "InvalidRequest",
    "MethodError",
    "MissingDependency",
    "ProtocolError",
    "Request",
    "Worker",
    "build_handshake",
    "check_handshake",
    "get_codec",
    "parse_handshake",
    "parse_message",
    "parse_request",
]
