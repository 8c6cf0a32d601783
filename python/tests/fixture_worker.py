"""A worker for the SDK's own process tests: what tests/workers/python_worker.py does not
cover (stray output, sync cancellation, child processes, blocking threads)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from polyglot_worker import Context, Worker

worker = Worker(os.environ.get("POLYGLOT_MODULE", "fixture"), version="1.0.0", max_concurrency=4)


@worker.method
def stray() -> str:
    print("stray print from a method")
    sys.stdout.flush()
    os.write(1, b"stray os.write to fd 1\n")
    # A child process inherits fds 0 and 1: its output must not reach the protocol, and
    # it must not read the requests.
    subprocess.run([sys.executable, "-c", "import sys; print('child says hi'); sys.stdin.read()"], check=True)
    return "ok"


@worker.method
def wait_cancel(ctx: Context) -> str:
    """Sync: waits (up to 10 s) to be cancelled, then says so on stderr."""
    if ctx.cancel_event.wait(10):
        print(f"call {ctx.call_id} saw its cancellation", file=sys.stderr, flush=True)
        return "cancelled"
    return "not cancelled"


@worker.method
def block(seconds: float) -> float:
    """Sync: blocks a pool thread."""
    time.sleep(seconds)
    return seconds


@worker.method
def log(ctx: Context) -> str:
    ctx.log("warn", "disk almost full", free_mb=12)
    worker.log("info", "from the worker")
    return "logged"


if __name__ == "__main__":
    worker.serve()
