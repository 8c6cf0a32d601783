#!/usr/bin/env python3
"""Benchmarks of the polyglot package against what a Python program would use instead,
all in this one process, printed as a table with ratios (baseline time / ours: above 1,
ours is faster).

- BLAKE3: ``polyglot.blake3`` against ``hashlib.blake2b`` (the standard library's fastest
  cryptographic hash) and the ``blake3`` package (single-threaded by default, and with
  ``max_threads=AUTO``).
- zstd: ``polyglot.compress``/``decompress`` against the ``zstandard`` package, level 3,
  with and without a content checksum (ours always writes one, as the zstd command does).
- Calls: ``Runtime.call`` to the Rust test worker's ``echo`` (MessagePack) against a
  hand-written ``subprocess`` echo speaking JSON lines, the usual do-it-yourself way to
  call another process.
- ``Runtime.acall`` with 64 calls in flight, time per call: to the in-process builtin
  ``crypto`` (BLAKE3 of 0 bytes) against a blocking ``Runtime.call`` of the same and
  against asyncio alone (the same tasks awaiting futures that the loop completes
  itself: what asyncio costs with no call at all); and to the worker's ``echo`` against
  the subprocess echo. 64 tasks each await one call at a time; the echo is also run the
  way this bench first did, a task per call through an ``asyncio.Semaphore(64)``, whose
  own cost is mostly asyncio's (its "asyncio alone" row).

Sizes: 1 MB and 64 MB. Each case runs in interleaved rounds and keeps its best time, so
that the machine's load (builds, other tests) hits every variant alike.

    pip install ./crates/polyglot-py blake3 zstandard   # a release build
    python crates/polyglot-py/bench/bench.py [--quick]

The Rust test worker is built in release mode if missing
(``cargo build --release -p polyglot-worker --example test_worker``).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Awaitable, Callable, Coroutine, Dict, List, Tuple

import blake3 as blake3_pkg
import zstandard

import polyglot

REPO = Path(__file__).resolve().parents[3]
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))

MB = 1_000_000


def best_of(cases: Dict[str, Callable[[], object]], rounds: int, reps: int) -> Dict[str, float]:
    """The best time of one run of each case, over `rounds` interleaved rounds of `reps`
    runs each."""
    best = {name: float("inf") for name in cases}
    for _ in range(rounds):
        for name, fn in cases.items():
            started = time.perf_counter()
            for _ in range(reps):
                fn()
            best[name] = min(best[name], (time.perf_counter() - started) / reps)
    return best


def text_data(size: int) -> bytes:
    """Log-like JSON lines: compressible the way real payloads are, not trivially."""
    rng = random.Random(42)
    words = ["alpha", "beta", "gamma", "delta", "error", "info", "user", "request",
             "latency", "cache", "miss", "hit", "GET", "POST", "/api/v1/items"]
    lines = []
    total = 0
    i = 0
    while total < size:
        line = json.dumps({
            "ts": 1_700_000_000 + i, "level": rng.choice(words[4:6]),
            "path": rng.choice(words[12:]), "user": rng.randrange(10_000),
            "ms": round(rng.random() * 250, 3),
            "msg": " ".join(rng.choice(words) for _ in range(rng.randrange(3, 12))),
        }).encode() + b"\n"
        lines.append(line)
        total += len(line)
        i += 1
    return b"".join(lines)[:size]


Row = Tuple[str, str, float, List[Tuple[str, float]]]


def bench_blake3(size: int, rounds: int, reps: int) -> Row:
    data = os.urandom(size)
    auto = blake3_pkg.blake3.AUTO
    assert polyglot.blake3(data) == blake3_pkg.blake3(data).digest()
    t = best_of({
        "ours": lambda: polyglot.blake3(data),
        "hashlib.blake2b": lambda: hashlib.blake2b(data).digest(),
        "blake3 (1 thread)": lambda: blake3_pkg.blake3(data).digest(),
        "blake3 (AUTO threads)": lambda: blake3_pkg.blake3(data, max_threads=auto).digest(),
    }, rounds, reps)
    ours = t.pop("ours")
    return ("polyglot.blake3", size_name(size), ours, list(t.items()))


def bench_compress(size: int, rounds: int, reps: int) -> Tuple[Row, Row]:
    data = text_data(size)
    plain = zstandard.ZstdCompressor(level=3)
    checked = zstandard.ZstdCompressor(level=3, write_checksum=True)
    dctx = zstandard.ZstdDecompressor()
    ours_packed = polyglot.compress(data, 3)
    assert dctx.decompress(ours_packed) == data
    assert polyglot.decompress(checked.compress(data)) == data
    t = best_of({
        "ours": lambda: polyglot.compress(data, 3),
        "zstandard": lambda: plain.compress(data),
        "zstandard +checksum": lambda: checked.compress(data),
    }, rounds, reps)
    ours = t.pop("ours")
    ratio = len(data) / len(ours_packed)
    compress_row = (f"polyglot.compress (ratio {ratio:.1f})", size_name(size), ours,
                    list(t.items()))
    theirs_packed = checked.compress(data)
    t = best_of({
        "ours": lambda: polyglot.decompress(ours_packed),
        "zstandard +checksum": lambda: dctx.decompress(theirs_packed),
    }, rounds, reps)
    ours = t.pop("ours")
    return compress_row, ("polyglot.decompress", size_name(size), ours, list(t.items()))


ECHO_CHILD = r"""
import json, sys
for line in sys.stdin:
    sys.stdout.write(json.dumps(json.loads(line)) + "\n")
    sys.stdout.flush()
"""


class SubprocessEcho:
    """What a Python user writes instead: a child process echoing JSON lines."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", ECHO_CHILD],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def call(self, value: object) -> object:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(json.dumps(value).encode() + b"\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self) -> None:
        assert self.proc.stdin
        self.proc.stdin.close()
        self.proc.wait()


def rust_worker() -> Path:
    path = TARGET / "release" / "examples" / "test_worker"
    if not path.exists():
        subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "polyglot-worker",
                        "--example", "test_worker"], cwd=REPO, check=True)
    return path


#: Calls in flight in the asyncio cases.
IN_FLIGHT = 64

Call = Callable[[], Awaitable[Any]]


async def by_tasks(call: Call, n: int) -> float:
    """Time per call of about `n` calls made by IN_FLIGHT tasks, each awaiting one call
    at a time."""
    per_task = n // IN_FLIGHT

    async def task() -> None:
        for _ in range(per_task):
            await call()

    started = time.perf_counter()
    await asyncio.gather(*(task() for _ in range(IN_FLIGHT)))
    return (time.perf_counter() - started) / (per_task * IN_FLIGHT)


async def by_semaphore(call: Call, n: int) -> float:
    """Time per call of `n` calls, a task each, IN_FLIGHT at a time through a
    semaphore."""
    gate = asyncio.Semaphore(IN_FLIGHT)

    async def one() -> object:
        async with gate:
            return await call()

    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(n)))
    return (time.perf_counter() - started) / n


def asyncio_alone() -> "asyncio.Future[None]":
    """A future that the running loop completes on its next turn: a call that costs
    nothing but asyncio's own work."""
    loop = asyncio.get_running_loop()
    future = loop.create_future()
    loop.call_soon(future.set_result, None)
    return future


def best_async(cases: Dict[str, Callable[[], Coroutine[Any, Any, float]]],
               rounds: int) -> Dict[str, float]:
    """The best time per call of each case over `rounds` interleaved rounds, each case
    in a new event loop."""
    best = {name: float("inf") for name in cases}
    for _ in range(rounds):
        for name, case in cases.items():
            best[name] = min(best[name], asyncio.run(case()))
    return best


def bench_calls(rounds: int, reps: int) -> List[Row]:
    rows: List[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "echo"
        folder.mkdir()
        (folder / "module.json").write_text(json.dumps({
            "name": "echo", "language": "rust", "version": "1.0.0",
            "command": str(rust_worker()), "codec": "msgpack",
        }))
        folder = Path(tmp) / "crypto"
        folder.mkdir()
        (folder / "module.json").write_text(json.dumps({
            "name": "crypto", "language": "rust", "version": "1.0.0", "builtin": "crypto",
        }))
        echo = SubprocessEcho()
        with polyglot.Runtime(tmp) as rt:
            payloads: Dict[str, Any] = {
                "small dict": {"id": 7, "name": "polyglot", "tags": ["a", "b"], "ok": True},
                "64 KB str": "x" * 65_536,
            }
            for label, payload in payloads.items():
                assert rt.call("echo", "echo", payload) == payload
                assert echo.call(payload) == payload
                t = best_of({
                    "ours": lambda: rt.call("echo", "echo", payload),
                    "subprocess JSON lines": lambda: echo.call(payload),
                }, rounds, reps)
                ours = t.pop("ours")
                rows.append(("Runtime.call echo (Rust worker)", label, ours, list(t.items())))
            n = reps * 5
            # The asyncio bridge alone: an in-process builtin answers in microseconds.
            empty = {"data": b""}
            assert (rt.call("crypto", "blake3", params=empty)
                    == blake3_pkg.blake3(b"").hexdigest())

            def builtin() -> Awaitable[Any]:
                return rt.acall("crypto", "blake3", params=empty)

            t = best_async({
                "ours": lambda: by_tasks(builtin, n),
                "alone": lambda: by_tasks(asyncio_alone, n),
            }, rounds)
            sync = best_of({"x": lambda: rt.call("crypto", "blake3", params=empty)},
                           rounds, reps)["x"]
            rows.append((f"Runtime.acall, {IN_FLIGHT} tasks in flight (time per call)",
                         "in-process BLAKE3 of 0 B", t["ours"],
                         [("Runtime.call of the same, one at a time", sync),
                          (f"asyncio alone, {IN_FLIGHT} tasks", t["alone"])]))
            # Throughput against the worker, against the same subprocess echo (which
            # answers one line at a time).
            payload = payloads["small dict"]

            def echo_call() -> Awaitable[Any]:
                return rt.acall("echo", "echo", payload)

            t = best_async({
                "tasks": lambda: by_tasks(echo_call, n),
                "semaphore": lambda: by_semaphore(echo_call, n),
                "alone": lambda: by_semaphore(asyncio_alone, n),
            }, rounds)
            theirs = best_of({"x": lambda: echo.call(payload)}, rounds, reps)["x"]
            rows.append((f"Runtime.acall, {IN_FLIGHT} tasks in flight (time per call)",
                         "small dict", t["tasks"],
                         [("subprocess JSON lines, one at a time", theirs)]))
            rows.append((f"Runtime.acall, a task per call, {IN_FLIGHT} in flight "
                         "(Semaphore)", "small dict", t["semaphore"],
                         [("subprocess JSON lines, one at a time", theirs),
                          ("asyncio alone, same tasks and Semaphore", t["alone"])]))
        echo.close()
    return rows


def size_name(size: int) -> str:
    return f"{size // MB} MB"


def fmt_time(s: float) -> str:
    if s >= 1e-3:
        return f"{s * 1e3:.2f} ms"
    return f"{s * 1e6:.1f} µs"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer rounds (a smoke run)")
    args = ap.parse_args()
    small_rounds, big_rounds, call_rounds = (3, 2, 3) if args.quick else (15, 15, 7)
    rows: List[Row] = []
    for size, rounds, reps in ((1 * MB, small_rounds, 20), (64 * MB, big_rounds, 1)):
        rows.append(bench_blake3(size, rounds, reps))
        rows.extend(bench_compress(size, rounds, reps))
    rows.extend(bench_calls(call_rounds, 300 if args.quick else 2000))

    print(f"polyglot {polyglot.__version__}, Python {sys.version.split()[0]}, "
          f"{os.cpu_count()} CPUs; best of interleaved rounds")
    print()
    print("| case | size | ours | baseline | baseline time | baseline / ours |")
    print("| --- | --- | --- | --- | --- | --- |")
    for case, size, ours, baselines in rows:
        for i, (name, theirs) in enumerate(baselines):
            left = (case, size, fmt_time(ours)) if i == 0 else ("", "", "")
            throughput = ""
            if size.endswith("MB") and "call" not in case:
                mb = int(size.split()[0])
                throughput = f" ({mb / theirs / 1e3:.2f} GB/s)"
                if i == 0:
                    left = (case, size, f"{fmt_time(ours)} ({mb / ours / 1e3:.2f} GB/s)")
            print(f"| {left[0]} | {left[1]} | {left[2]} | {name} | "
                  f"{fmt_time(theirs)}{throughput} | {theirs / ours:.2f}x |")


if __name__ == "__main__":
    main()
