"""Odd and hostile arguments to every entry point raise exceptions; none crashes the
interpreter (a crash would end this test run)."""

from __future__ import annotations

import asyncio
import math

import pytest

import polyglot

ODD = [None, 0, -1, 2**70, -(2**70), math.nan, math.inf, -math.inf, "", "\x00", "é" * 10_000,
       b"", b"\x00" * 3, bytearray(5), memoryview(b"abc")[::-1], [], {}, {1: 2}, (),
       object(), type, lambda: 0, 2.5, True, {"k": [None] * 1000}]


def test_native_functions_refuse_odd_arguments_without_crashing():
    for x in ODD:
        for fn, kwargs in (
            (polyglot.blake3, {}), (polyglot.blake3, {"length": x}), (polyglot.blake3, {"key": x}),
            (polyglot.blake3, {"context": x}), (polyglot.blake3_hex, {}),
            (polyglot.compress, {}), (polyglot.decompress, {}),
        ):
            data = x if not kwargs else b"data"
            try:
                fn(data, **kwargs)
            except Exception:  # noqa: BLE001 - refusing is the point
                pass
        for fn in (polyglot.encrypt, polyglot.decrypt):
            for args in ((x, bytes(32)), (b"m" * 40, x), (b"m" * 40, bytes(32), x)):
                try:
                    fn(*args)
                except Exception:  # noqa: BLE001
                    pass
        for args in ((b"x", x), (polyglot.compress(b"x"), x)):
            for fn in (polyglot.compress, polyglot.decompress):
                try:
                    fn(*args)
                except Exception:  # noqa: BLE001
                    pass


def test_runtime_methods_refuse_odd_arguments_without_crashing(echo_modules, tmp_path):
    with polyglot.Runtime(echo_modules.dir) as rt:
        for x in ODD:
            attempts = [
                lambda: rt.call(x, "echo"),
                lambda: rt.call("echo", x),
                lambda: rt.call("echo", "echo", x, timeout=x),
                lambda: rt.call("echo", "echo", routing_key=x),
                lambda: rt.call("echo", "echo", params=x),
                lambda: rt.module(x),
                lambda: rt.health(x),
                lambda: rt.reload(x),
                lambda: rt.deploy("echo", x),
                lambda: rt.deploy("echo", tmp_path, x),
                lambda: rt.deploy("echo", tmp_path, "canary", stages=x, stage_duration=x),
                lambda: rt.deploy("echo", tmp_path, "immediate", at=x),
                lambda: rt.rollback(x, to=x),
                lambda: rt.set_split("echo", x),
                lambda: rt.abort(x, x),
                lambda: rt.deployment(x),
                lambda: rt.history(x),
                lambda: rt.events(x, timeout=x),
            ]
            for attempt in attempts:
                try:
                    attempt()
                except Exception:  # noqa: BLE001
                    pass
        # Still serving after all of that.
        assert rt.call("echo", "echo", "ok") == "ok"

        async def odd_acalls():
            for x in ODD[:8]:
                try:
                    await rt.acall("echo", "echo", x, timeout=x)
                except Exception:  # noqa: BLE001
                    pass
            return await rt.acall("echo", "echo", "still ok")

        assert asyncio.run(odd_acalls()) == "still ok"
        with pytest.raises(RuntimeError):
            rt.acall("echo", "echo")  # no running loop: refused, not a crash


def test_constructors_refuse_odd_arguments():
    for kwargs in ({"drain_timeout": -1}, {"drain_timeout": math.nan}, {"state_file": 5}):
        with pytest.raises((ValueError, TypeError)):
            polyglot.Runtime(**kwargs)
    with pytest.warns(RuntimeWarning, match="cannot read the modules directory"):
        polyglot.Runtime("/nonexistent/modules").close()
    for url in ("", "http://", "ftp://x", "http://[::1", "http://127.0.0.1:0"):
        with pytest.raises(polyglot.ConnectionFailed):
            polyglot.connect(url, timeout=1)
    with pytest.raises(ValueError):
        polyglot.connect("http://127.0.0.1:1", timeout=-1)
