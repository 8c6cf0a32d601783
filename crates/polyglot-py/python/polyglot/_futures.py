"""The future that ``acall`` and the other awaitables return.

An asyncio future whose ``cancel`` also cancels the call behind it, on the extension's
threads. Overriding ``cancel`` catches every way a future is cancelled (``Task.cancel``,
``wait_for``, ``timeout``, ``gather``: each calls the awaited future's ``cancel``), and
costs nothing for a call that is not cancelled, where a done-callback would cost one
more loop callback per call. See ``src/asyncio.rs``.
"""

from __future__ import annotations

import asyncio
from typing import Any, Optional, Protocol


class _Call(Protocol):
    """The extension's handle on the call: ``cancel`` stops it, started or not."""

    def cancel(self) -> None: ...


class CallFuture(asyncio.Future[Any]):
    """An asyncio future completed by a call on the extension's threads; cancelling it
    cancels the call."""

    __slots__ = ("_call",)
    _call: _Call

    def cancel(self, msg: Optional[Any] = None) -> bool:
        if not super().cancel(msg):
            return False
        self._call.cancel()
        return True
