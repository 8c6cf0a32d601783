"""Calls through a runtime in this process and through a host, with the same tests:
values both ways, bytes and large payloads, every error kind, threads with the GIL
released, and asyncio."""

from __future__ import annotations

import asyncio
import math
from contextlib import nullcontext
import threading
import time

import pytest

import polyglot

SAMPLES = [
    None, True, False, 0, 1, -1, 2**63 - 1, -(2**63), 2**64 - 1, 1.5, -0.0, 1e300,
    "", "héllo ✓ 𝄞", b"", b"\x00\xff" * 10, [], [1, [2, [3, [4]]]],
    {"a": {"b": [1, b"x", None]}, "": 0}, {"nested": [{"k": "v"}] * 3},
]


def test_values_come_back_as_they_were_sent(open_api, echo_modules):
    api = open_api(echo_modules.dir)
    for module in ("echo", "echo-py"):
        for v in SAMPLES:
            got = api.call(module, "echo", v)
            assert got == v and type(got) is type(v), (module, v, got)
        # Several positional params arrive as a list; a tuple comes back as a list.
        assert api.call(module, "echo", 1, "two", b"3") == [1, "two", b"3"]
        assert api.call(module, "echo", (1, 2)) == [1, 2]
        # Bytes-likes travel as bytes.
        assert api.call(module, "echo", bytearray(b"ab")) == b"ab"
        assert api.call(module, "echo", memoryview(b"xabx")[1:3]) == b"ab"
    # NaN survives MessagePack; JSON has no NaN (the Python worker would get null).
    assert math.isnan(api.call("echo", "echo", float("nan")))


def test_named_params_are_given_whole(open_api, echo_modules):
    api = open_api(echo_modules.dir)
    assert api.call("echo-py", "echo", params={"a": 1, "b": [2]}) == {"a": 1, "b": [2]}
    assert api.call("echo", "add", params={"a": 2, "b": 3}) == 5
    with pytest.raises(TypeError, match="not both"):
        api.call("echo", "echo", 1, params={"a": 1})


def test_values_that_cannot_be_sent_are_refused_naming_them(open_api, echo_modules):
    api = open_api(echo_modules.dir)
    with pytest.raises(OverflowError, match="18446744073709551616"):
        api.call("echo", "echo", 2**64)
    with pytest.raises(OverflowError, match="-9223372036854775809"):
        api.call("echo", "echo", -(2**63) - 1)
    with pytest.raises(OverflowError, match="10001 bits"):
        api.call("echo", "echo", [1, {"x": 2**10000}])
    with pytest.raises(TypeError, match="'int'.*the key 1"):
        api.call("echo", "echo", {1: "one"})
    with pytest.raises(TypeError, match="'set'"):
        api.call("echo", "echo", {1, 2})
    with pytest.raises(TypeError, match="'object'"):
        api.call("echo", "echo", object())
    cyclic: list = []
    cyclic.append(cyclic)
    with pytest.raises(ValueError, match="deeper than"):
        api.call("echo", "echo", cyclic)
    with pytest.raises(UnicodeEncodeError):
        api.call("echo", "echo", "\ud800")
    assert api.call("echo", "echo", "still fine") == "still fine"


def test_large_payloads(open_api, echo_modules):
    api = open_api(echo_modules.dir)
    big = bytes(range(256)) * (10 * 4096)  # 10 MiB
    # A host takes requests up to gRPC's default 4 MiB; its answers may be larger.
    sent = big if open_api.mode == "embedded" else big[: 3 << 20]
    assert api.call("echo", "echo", sent, timeout=30) == sent
    assert api.call("echo-py", "echo", big[: 1 << 20], timeout=30) == big[: 1 << 20]
    text = api.call("echo", "big", 10_000_000, timeout=30)
    assert len(text) == 10_000_000 and text[:3] == "xxx"


def test_each_error_kind_is_its_own_exception(open_api, modules):
    modules.add("echo", "rust")
    modules.add("crashy", "rust")
    modules.add("tiny", "rust", maxFrameBytes=64 * 1024)
    modules.add("narrow", "rust", maxQueue=1, env={"TEST_MAX_CONCURRENCY": "1"})
    modules.add("broken", "rust", env={"TEST_EXIT_AT_START": "3"},
                restart={"maxRestarts": 0})
    modules.add("shielded", "rust", env={"TEST_EXIT_AT_START": "3"},
                restart={"maxRestarts": 0}, fallback="echo")
    d = modules.dir / "crypto"
    d.mkdir()
    (d / "module.json").write_text(
        '{"name": "crypto", "language": "rust", "version": "1.0.0", "builtin": "crypto"}')
    # The two modules that cannot start are load warnings of an embedded runtime.
    warns = pytest.warns(RuntimeWarning) if open_api.mode == "embedded" else nullcontext()
    with warns:
        api = open_api(modules.dir)

    e = pytest.raises(polyglot.ModuleNotFound, api.call, "nope", "echo").value
    assert e.kind == "module_not_found" and e.module == "nope"
    assert isinstance(e, LookupError) and isinstance(e, polyglot.PolyglotError)

    e = pytest.raises(polyglot.MethodNotFound, api.call, "echo", "nope").value
    assert (e.module, e.method) == ("echo", "nope")

    e = pytest.raises(polyglot.Timeout, api.call, "echo", "sleep", 5000, timeout=0.2).value
    assert isinstance(e, TimeoutError) and e.method == "sleep"

    e = pytest.raises(polyglot.RemoteError, api.call, "echo", "fail", "NOPE", "it failed").value
    assert (e.code, e.message, e.data) == ("NOPE", "it failed", None)
    e = pytest.raises(polyglot.RemoteError, api.call, "crypto", "blake3",
                      params={"data": b"x", "key": b"short"}).value
    assert e.code == "INVALID_PARAMS"
    assert e.data == {"param": "key", "expected": 32, "actual": 5}

    e = pytest.raises(polyglot.WorkerExited, api.call, "crashy", "crash").value
    assert e.module == "crashy"

    e = pytest.raises(polyglot.FrameTooLarge, api.call, "tiny", "echo", bytes(200_000)).value
    assert e.module == "tiny"
    # An answer over the limit is refused by the worker itself, with the protocol's code.
    e = pytest.raises(polyglot.RemoteError, api.call, "tiny", "big", 200_000).value
    assert e.code == "FRAME_TOO_LARGE"

    e = pytest.raises(polyglot.Unavailable, api.call, "broken", "echo", 1).value
    assert e.causes and e.causes[0][0] == "broken"

    e = pytest.raises(polyglot.FallbackFailed, api.call, "shielded", "fail", "X", "y").value
    assert e.served_by == "echo"
    assert isinstance(e.__cause__, polyglot.RemoteError) and e.__cause__.code == "X"
    assert api.call("shielded", "echo", 7) == 7  # and the fallback serves

    async def flood():
        calls = [api.acall("narrow", "sleep", 300) for _ in range(6)]
        return await asyncio.gather(*calls, return_exceptions=True)

    outcomes = asyncio.run(flood())
    assert any(isinstance(o, polyglot.Overloaded) for o in outcomes), outcomes
    assert 300 in outcomes

    api.close()
    e = pytest.raises(polyglot.ShuttingDown, api.call, "echo", "echo", 1).value
    assert e.kind == "shutting_down"


def test_threads_call_at_once_with_the_gil_released(open_api, echo_modules):
    api = open_api(echo_modules.dir)
    api.call("echo", "sleep", 1)  # warm

    started = time.perf_counter()
    for _ in range(8):
        assert api.call("echo", "sleep", 200) == 200
    serial = time.perf_counter() - started

    results = []
    spins = 0

    def one():
        results.append(api.call("echo", "sleep", 200))

    threads = [threading.Thread(target=one) for _ in range(8)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    # Meanwhile this thread runs Python: it could not if a waiting call held the GIL.
    while any(t.is_alive() for t in threads):
        spins += 1
    for t in threads:
        t.join()
    parallel = time.perf_counter() - started
    assert results == [200] * 8
    assert parallel < serial / 3, (parallel, serial)
    assert spins > 10_000, spins


def test_a_thousand_concurrent_acalls(open_api, echo_modules):
    api = open_api(echo_modules.dir)

    async def main():
        gaps = []

        async def ticker(stop):
            last = time.perf_counter()
            while not stop.is_set():
                await asyncio.sleep(0.01)
                now = time.perf_counter()
                gaps.append(now - last)
                last = now

        stop = asyncio.Event()
        tick = asyncio.create_task(ticker(stop))
        results = await asyncio.gather(
            *(api.acall("echo", "echo", {"i": i, "b": bytes([i % 256])}) for i in range(1000)))
        sleepers = await asyncio.gather(*(api.acall("echo", "sleep", 200) for _ in range(48)))
        stop.set()
        await tick
        return results, sleepers, max(gaps)

    started = time.perf_counter()
    results, sleepers, worst_gap = asyncio.run(main())
    took = time.perf_counter() - started
    assert results == [{"i": i, "b": bytes([i % 256])} for i in range(1000)]
    assert sleepers == [200] * 48
    # 48 calls of 200 ms on a worker taking 16 at once: about 0.6 s, not 9.6 s.
    assert took < 48 * 0.2 / 3, took
    # The loop kept running: no call blocked it.
    assert worst_gap < 0.5, worst_gap


def test_acall_errors_cancellation_and_replies(open_api, echo_modules):
    api = open_api(echo_modules.dir)

    async def main():
        with pytest.raises(polyglot.ModuleNotFound):
            await api.acall("nope", "echo")
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(api.acall("echo", "sleep", 10_000), 0.2)
        reply = await api.acall_reply("echo", "echo", "hi")
        return reply

    reply = asyncio.run(main())
    assert reply.value == "hi" and reply.served_by == "echo" and reply.version == "1.0.0"
    assert reply.fallback is False and reply.instance == 0
    assert "served_by='echo'" in repr(reply) or 'served_by="echo"' in repr(reply)
    # The cancelled call did not take the runtime down.
    assert api.call("echo", "echo", 1) == 1
    reply = api.call_reply("echo-py", "echo", b"x", routing_key="user-1")
    assert reply.value == b"x" and reply.served_by == "echo-py"


def test_modules_and_health(open_api, echo_modules):
    api = open_api(echo_modules.dir)
    infos = api.modules()
    assert [m["name"] for m in infos] == ["crypto", "echo", "echo-py"]
    echo = api.module("echo")
    assert echo["health"] == "healthy" and echo["state"] == "running"
    assert echo["language"] == "rust" and echo["version"] == "1.0.0"
    assert "sleep" in echo["methods"] and echo["in_process"] is False
    assert echo["instances"][0]["pid"] > 0 and echo["last_error"] is None
    assert api.module("crypto")["in_process"] is True
    assert api.health("echo-py") == "healthy"
    with pytest.raises(polyglot.ModuleNotFound):
        api.module("nope")
    assert api.call("crypto", "blake3", params={"data": b"abc"}) == polyglot.blake3_hex(b"abc")
