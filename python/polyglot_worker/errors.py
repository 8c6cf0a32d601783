"""Error types and the protocol's error codes (docs/protocol.md, section 6)."""

from __future__ import annotations

from typing import Any, Optional, Union

# An id as the protocol carries it: an integer or a string (docs/protocol.md, section 4).
Id = Union[int, str]


class ErrorCode:
    """The error codes of the protocol. Methods may also use their own `UPPER_SNAKE` codes."""

    METHOD_NOT_FOUND = "METHOD_NOT_FOUND"
    """The worker does not serve this method."""
    INVALID_PARAMS = "INVALID_PARAMS"
    """The params do not fit the method."""
    INVALID_REQUEST = "INVALID_REQUEST"
    """The request is not a valid envelope (answered when its id can be read)."""
    INTERNAL = "INTERNAL"
    """The method failed unexpectedly (an exception)."""
    CANCELLED = "CANCELLED"
    """The call was cancelled with `$cancel`."""
    FRAME_TOO_LARGE = "FRAME_TOO_LARGE"
    """The message would exceed the frame size limit."""
    SHUTTING_DOWN = "SHUTTING_DOWN"
    """The worker got `$shutdown` and takes no new calls."""
    UNHEALTHY = "UNHEALTHY"
    """What this SDK answers `$health` with when the health function raises (not in the
    spec's table: a method's own code, like any other)."""
    NOT_SUPPORTED = "NOT_SUPPORTED"
    """This implementation announces the method but does not serve it (a fallback that
    implements part of a module): the host sends the call on down the fallback chain."""


class MethodError(Exception):
    """Raised by a method to answer its call with an error response.

    `code` is one of `ErrorCode` or the method's own `UPPER_SNAKE` code, `message` is for
    people, and `data` (any protocol value) is for programs.

    >>> MethodError("NOT_READY", "model not loaded").code
    'NOT_READY'
    """

    def __init__(self, code: str, message: str, data: Any = None) -> None:
        if not isinstance(code, str) or not code:
            raise TypeError(f"MethodError code must be a non-empty string, got {code!r}")
        super().__init__(message)
        self.code = code
        self.message = str(message)
        self.data = data

    def __repr__(self) -> str:
        return f"MethodError({self.code!r}, {self.message!r}, data={self.data!r})"


class ProtocolError(Exception):
    """A frame, message or handshake that breaks docs/protocol.md. The message names the
    field or rule that was broken."""


class DecodeError(ProtocolError):
    """A frame that does not decode with its codec (not JSON, not MessagePack, bad `$bytes`)."""


class EncodeError(ProtocolError):
    """A value that cannot be sent: outside the protocol's data model (docs/protocol.md,
    section 7), or not representable by the codec."""


class InvalidRequest(ProtocolError):
    """A decoded request that is not a valid envelope. `id` is the request's id when it
    could be read (so the worker can answer `INVALID_REQUEST`), else `None`."""

    def __init__(self, message: str, id: Optional[Id] = None) -> None:
        super().__init__(message)
        self.id = id


class InvalidMessage(ProtocolError):
    """A decoded worker message (response, progress, log) that is not valid."""


class InvalidHandshake(ProtocolError):
    """A handshake line that is invalid, or that a host would refuse."""


class FrameTooLarge(EncodeError):
    """An encoded message over the frame size limit."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"the message is {size} bytes, over the frame limit of {limit} bytes")
        self.size = size
        self.limit = limit


class MissingDependency(ImportError):
    """An optional package this feature needs is not installed."""
