"""`Context`: what a method knows about its call, and what it can send while it runs."""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING, Any, Optional

from .envelope import progress_message
from .errors import ErrorCode, Id, MethodError

if TYPE_CHECKING:  # pragma: no cover
    from .worker import _Connection


class Context:
    """The call a method is serving. A method gets one by declaring a parameter named
    `ctx` (or annotated `Context`); the worker fills it in, the host never sends it.

    Every method may be called from any thread: sync methods run on the worker's thread
    pool, async ones on its event loop.
    """

    def __init__(
        self,
        conn: "_Connection",
        call_id: Optional[Id],
        method: str,
        timeout_ms: Optional[int] = None,
    ) -> None:
        self.call_id: Optional[Id] = call_id
        """The call's id, as the host sent it; `None` for a notification."""
        self.method: str = method
        """The method name the host called."""
        self.timeout_ms: Optional[int] = timeout_ms
        """How long the host waits for this call, in milliseconds, when it said so."""
        self._conn = conn
        # `_lock` orders progress before the response: the response is sent with `_done`
        # set under it, so a progress message either goes out before it or not at all.
        self._lock = threading.Lock()
        self._done = False
        self._cancel = threading.Event()
        self._cancel_async: Optional[asyncio.Event] = None

    def __repr__(self) -> str:
        return f"<Context {self.method} id={self.call_id!r}>"

    # ---------------------------------------------------------------- sending
    def progress(self, value: Any) -> None:
        """Sends a progress message (`{"id": ..., "progress": value}`) for this call.

        Progress after the call was answered (or for a notification) is dropped. Raises
        `polyglot_worker.EncodeError` (a `FrameTooLarge` when over the frame limit) when
        `value` cannot be sent.
        """
        if self.call_id is None or self._done:
            return
        frame = self._conn.encode_frame(progress_message(self.call_id, value))
        with self._lock:
            if not self._done:
                self._conn.output.send(frame)

    def log(self, level: str, message: str, **fields: Any) -> None:
        """Sends a log message: `level` is `trace`, `debug`, `info`, `warn` or `error`;
        `fields` are structured data the host logs beside the message."""
        self._conn.log(level, message, fields)

    # ---------------------------------------------------------------- cancellation
    @property
    def cancelled(self) -> bool:
        """Whether the host cancelled this call with `$cancel`. A sync method checks it
        between steps of long work; its result is dropped (the host was already answered
        `CANCELLED`)."""
        return self._cancel.is_set()

    @property
    def cancel_event(self) -> threading.Event:
        """Set when the call is cancelled; a sync method can `cancel_event.wait(timeout)`
        instead of sleeping."""
        return self._cancel

    async def wait_cancelled(self) -> None:
        """Returns when the call is cancelled. For async methods (call it on the worker's
        event loop), e.g. raced against other work with `asyncio.wait`."""
        if self._cancel.is_set():
            return
        if self._cancel_async is None:
            self._cancel_async = asyncio.Event()
        await self._cancel_async.wait()

    def raise_if_cancelled(self) -> None:
        """Raises `MethodError(CANCELLED)` when the call was cancelled: a short way for a
        sync method to stop."""
        if self._cancel.is_set():
            raise MethodError(ErrorCode.CANCELLED, "cancelled by the host")

    def _set_cancelled(self) -> None:
        # On the event loop's thread.
        self._cancel.set()
        if self._cancel_async is not None:
            self._cancel_async.set()

    # ---------------------------------------------------------------- test hook
    def _write_raw(self, data: bytes) -> None:
        """TEST ONLY: writes `data` as-is to the protocol stream, in order with this
        worker's other output. It exists so tests can make a worker break the protocol
        (see `polyglot_worker.testing.write_raw`); a real method never needs it."""
        self._conn.output.send(bytes(data))
