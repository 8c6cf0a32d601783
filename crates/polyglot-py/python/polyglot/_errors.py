"""The exceptions of polyglot: one class per kind of error, all under PolyglotError.

The extension raises them through ``_make``, which picks the class by the error's kind
and sets its attributes. Every exception has ``kind`` (a short stable name), and those
about a call have ``module`` and ``method``.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple


class PolyglotError(Exception):
    """Base class of every polyglot error.

    Attributes: ``kind`` (a stable name such as ``"timeout"``; ``"internal"`` for a bug
    of polyglot itself), ``module`` and ``method`` (the call it is about, or None).
    Errors from a host also have ``grpc_status``.
    """

    kind: str = "internal"
    module: Optional[str] = None
    method: Optional[str] = None
    grpc_status: Optional[str] = None


class ModuleNotFound(PolyglotError, LookupError):
    """No module of that name is loaded."""


class MethodNotFound(PolyglotError, LookupError):
    """The module does not offer the method. ``offered`` lists what it offers."""

    offered: Optional[List[str]] = None


class Timeout(PolyglotError, TimeoutError):
    """The call's deadline passed (the worker was told to cancel it). ``timeout`` is
    the deadline in seconds, when known."""

    timeout: Optional[float] = None


class WorkerExited(PolyglotError):
    """The worker running the call exited before answering (it may have run).
    ``instance`` and ``reason`` say which and how."""

    instance: Optional[int] = None
    reason: Optional[str] = None


class RemoteError(PolyglotError):
    """The method ran and returned an error: ``code`` (such as ``"INVALID_PARAMS"``),
    ``message`` and ``data`` are the worker's own."""

    code: Optional[str] = None
    message: Optional[str] = None
    data: Any = None


class FrameTooLarge(PolyglotError):
    """The params or the result exceed the frame size limit. ``what`` ("request" or
    "response"), ``size`` and ``limit`` in bytes, when known."""

    what: Optional[str] = None
    size: Optional[int] = None
    limit: Optional[int] = None


class Overloaded(PolyglotError):
    """Every worker of the module is busy and its queue is full: refused at once.
    ``queue`` is the queue limit per worker."""

    queue: Optional[int] = None


class Unavailable(PolyglotError):
    """No implementation could take the call: the module and every fallback are
    unavailable. ``causes`` lists ``(implementation, reason)`` pairs."""

    causes: Optional[List[Tuple[str, str]]] = None


class FallbackFailed(PolyglotError):
    """The module was unavailable, and the fallback that took the call failed.
    ``served_by`` names the fallback, ``causes`` why the others could not take it; the
    fallback's own error is ``__cause__``."""

    causes: Optional[List[Tuple[str, str]]] = None
    served_by: Optional[str] = None


class ShuttingDown(PolyglotError):
    """The runtime is shutting down or closed and takes no new calls."""


class InvalidArgument(PolyglotError, ValueError):
    """An argument was refused: a bad strategy or manifest for a deployment, a key of
    the wrong length, a value out of range. ``code`` says which case, when known."""

    code: Optional[str] = None


class DeploymentError(PolyglotError):
    """A deployment operation was refused or failed; the active version keeps serving.
    ``code`` names the case: ``not_ready``, ``too_early``, ``deployment_in_progress``,
    ``no_rollback_target``, ``smoke_failed``, ``start_failed``, ``in_process``, ..."""

    code: Optional[str] = None


class LoadError(PolyglotError):
    """A module could not be loaded or reloaded (bad manifest, failed build, workers
    that did not start). For a reload, the running version keeps serving. ``errors``
    lists every problem of a strict load."""

    errors: Optional[List[str]] = None


class ConnectionFailed(PolyglotError, ConnectionError):
    """The host could not be reached (or the connection to it broke)."""

    url: Optional[str] = None


class AccessDenied(PolyglotError, PermissionError):
    """The host refused the request: a missing or wrong API key, or an operation it
    does not allow."""


class AuthenticationFailed(PolyglotError):
    """``decrypt``: the key or the associated data differ from encryption's, or the
    message was altered."""

    code: Optional[str] = None


class TooLarge(PolyglotError):
    """An output over its limit: ``decompress`` past ``max_size`` (a decompression
    bomb stops here)."""

    code: Optional[str] = None


class CorruptData(PolyglotError):
    """``decompress``: the input is not valid zstd (empty, truncated, altered)."""

    code: Optional[str] = None


_BY_KIND: Dict[str, type] = {
    "module_not_found": ModuleNotFound,
    "method_not_found": MethodNotFound,
    "timeout": Timeout,
    "worker_exited": WorkerExited,
    "remote": RemoteError,
    "frame_too_large": FrameTooLarge,
    "overloaded": Overloaded,
    "unavailable": Unavailable,
    "fallback_failed": FallbackFailed,
    "shutting_down": ShuttingDown,
    "invalid_argument": InvalidArgument,
    "deployment_refused": DeploymentError,
    "deployment_failed": DeploymentError,
    "version_not_found": DeploymentError,
    "load_failed": LoadError,
    "connection": ConnectionFailed,
    "access_denied": AccessDenied,
    "authentication_failed": AuthenticationFailed,
    "too_large": TooLarge,
    "corrupt_data": CorruptData,
}


def _make(kind: str, message: str, attrs: Dict[str, Any],
          cause: Optional[BaseException]) -> PolyglotError:
    """The exception for an error of ``kind``: its class, ``message`` as its text,
    ``attrs`` set on it, ``cause`` as its ``__cause__``."""
    cls = _BY_KIND.get(kind, PolyglotError)
    exc = cls(message)
    exc.kind = kind
    for name, value in attrs.items():
        if name == "causes" and value is not None:
            value = [tuple(c) for c in value]
        setattr(exc, name, value)
    if cause is not None:
        exc.__cause__ = cause
        if isinstance(exc, FallbackFailed):
            exc.error = cause  # type: ignore[attr-defined]
    return exc


__all__ = [
    "PolyglotError", "ModuleNotFound", "MethodNotFound", "Timeout", "WorkerExited",
    "RemoteError", "FrameTooLarge", "Overloaded", "Unavailable", "FallbackFailed",
    "ShuttingDown", "InvalidArgument", "DeploymentError", "LoadError",
    "ConnectionFailed", "AccessDenied", "AuthenticationFailed", "TooLarge",
    "CorruptData",
]

for _name in __all__:
    globals()[_name].__module__ = "polyglot"
del _name
