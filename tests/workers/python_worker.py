#!/usr/bin/env python3
"""A worker for the host's integration tests, written with the Python SDK.

Run with `/work/main/python` (the SDK) on PYTHONPATH. One script serves any test
manifest: the module name comes from POLYGLOT_MODULE, the version from POLYGLOT_VERSION,
and how many calls it takes at once from TEST_MAX_CONCURRENCY (default 16).

Methods:
  echo(*args)      one positional arg -> it; several -> the list; named args -> the dict
  add(a, b)        a + b for two integers, else INVALID_PARAMS
  fail(code, msg)  an error response with that code and message
  boom()           raises RuntimeError("boom") -> INTERNAL
  sleep(ms, cancelMarker=None)
                   sleeps ms milliseconds (async, cancellable), returns ms; when
                   cancelled, writes "cancelled" to the file cancelMarker if given
  progress(n)      sends n progress messages {"step": i}, i = 1..n, then returns n
  crash(code=3)    exits the process at once with that status, mid-call
  garbage()        writes "this is not protocol\\n" to the protocol stream, returns "sent"
  unknownId()      writes a response for id 987654321987 (never issued), returns "sent"
  pid()            the process id
  env(name)        the environment variable, or null
  version()        POLYGLOT_VERSION
  big(n)           a string of n "x"
  stray()          prints to stdout (print and fd 1), returns "printed"

Start-up behaviours, by environment variable:
  TEST_BANNER=text       writes that line to stdout before the handshake (a chatty library)
  TEST_NO_HANDSHAKE=1    writes "starting..." to stderr and never sends a handshake (it
                         exits when stdin closes, so it cannot outlive its host)
  TEST_EXIT_AT_START=N   writes "fatal: cannot load model" to stderr and exits N
  TEST_BAD_PROTOCOL=1    sends a handshake with "polyglot": 99
  TEST_HEALTH=unhealthy  `$health` answers error UNHEALTHY
  TEST_HEALTH_FILE=path  `$health` answers error UNHEALTHY while that file exists
  TEST_HEALTH=degraded   `$health` answers {"status": "degraded", "reason": "warming up"}
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any, Dict, Optional

from polyglot_worker import Context, ErrorCode, Handshake, MethodError, Worker
from polyglot_worker.testing import write_message, write_raw

UNKNOWN_ID = 987654321987


class ScriptedWorker(Worker):
    """A worker whose handshake can be made to claim an unknown protocol version."""

    def handshake(self, codec: str = "json") -> Handshake:
        hs = super().handshake(codec)
        if os.environ.get("TEST_BAD_PROTOCOL") == "1":
            # Built directly: the SDK's own builder refuses a version it does not speak.
            return Handshake(99, hs.module, hs.version, hs.methods, hs.codec,
                             hs.max_concurrency, hs.language, hs.pid)
        return hs


worker = ScriptedWorker(
    os.environ.get("POLYGLOT_MODULE", "python-test-worker"),
    version=os.environ.get("POLYGLOT_VERSION", "0.0.0"),
    max_concurrency=int(os.environ.get("TEST_MAX_CONCURRENCY", "16")),
)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@worker.method
def echo(*args: Any, **kwargs: Any) -> Any:
    if kwargs:
        return kwargs
    if len(args) == 1:
        return args[0]
    return list(args)


@worker.method
def add(a: Any, b: Any) -> Any:
    if not (_is_int(a) and _is_int(b)):
        raise MethodError(ErrorCode.INVALID_PARAMS, "add takes two integers")
    return a + b


@worker.method
def fail(code: Any, message: Any) -> None:
    if not isinstance(code, str) or not code or not isinstance(message, str):
        raise MethodError(ErrorCode.INVALID_PARAMS, "fail takes a code and a message, two strings")
    raise MethodError(code, message)


@worker.method
def boom() -> None:
    raise RuntimeError("boom")


@worker.method
async def sleep(ms: Any, cancelMarker: Optional[str] = None) -> Any:  # noqa: N803 (wire name)
    if not isinstance(ms, (int, float)) or isinstance(ms, bool) or ms < 0:
        raise MethodError(ErrorCode.INVALID_PARAMS, "sleep takes a number of milliseconds >= 0")
    try:
        await asyncio.sleep(ms / 1000)
    except asyncio.CancelledError:
        # Written when the call is cancelled, so tests can see `$cancel` arrived.
        if isinstance(cancelMarker, str):
            with open(cancelMarker, "w") as f:
                f.write("cancelled")
        raise
    return ms


@worker.method
def progress(n: Any, ctx: Context) -> Any:
    if not _is_int(n) or n < 0:
        raise MethodError(ErrorCode.INVALID_PARAMS, "progress takes a count >= 0")
    for i in range(1, n + 1):
        ctx.progress({"step": i})
    return n


@worker.method
def crash(code: Any = 3) -> None:
    os._exit(code if _is_int(code) else 3)


@worker.method
def garbage(ctx: Context) -> str:
    write_raw(ctx, b"this is not protocol\n")
    return "sent"


@worker.method("unknownId")
def unknown_id(ctx: Context) -> str:
    write_message(ctx, {"id": UNKNOWN_ID, "result": "nobody asked"})
    return "sent"


@worker.method
def pid() -> int:
    return os.getpid()


@worker.method
def env(name: str) -> Any:
    return os.environ.get(name)


@worker.method
def version() -> Any:
    return os.environ.get("POLYGLOT_VERSION")


@worker.method
def big(n: Any) -> Any:
    if not _is_int(n) or n < 0:
        raise MethodError(ErrorCode.INVALID_PARAMS, "big takes a length >= 0")
    return "x" * n


@worker.health
def health() -> Dict[str, Any]:
    if os.environ.get("TEST_HEALTH") == "unhealthy":
        raise MethodError(ErrorCode.UNHEALTHY, "unhealthy because TEST_HEALTH=unhealthy")
    path = os.environ.get("TEST_HEALTH_FILE")
    if path and os.path.exists(path):
        raise MethodError(ErrorCode.UNHEALTHY, f"unhealthy while {path} exists")
    if os.environ.get("TEST_HEALTH") == "degraded":
        return {"status": "degraded", "reason": "warming up"}
    return {"pid": os.getpid()}


@worker.method
def stray() -> str:
    """Prints to stdout the way careless code does; the SDK keeps it off the protocol."""
    print("stray output from a handler")
    os.write(1, b"stray bytes on fd 1\n")
    return "printed"


def main() -> None:
    exit_at_start = os.environ.get("TEST_EXIT_AT_START")
    if exit_at_start:
        sys.stderr.write("fatal: cannot load model\n")
        sys.stderr.flush()
        os._exit(int(exit_at_start))
    if os.environ.get("TEST_NO_HANDSHAKE") == "1":
        sys.stderr.write("starting...\n")
        sys.stderr.flush()
        # Never handshakes; waits for stdin to close so it cannot outlive the host.
        while os.read(0, 65536):
            pass
        os._exit(0)
    banner = os.environ.get("TEST_BANNER")
    if banner:
        os.write(1, banner.encode() + b"\n")  # the real stdout, before serve() takes it
    worker.serve()


if __name__ == "__main__":
    main()
