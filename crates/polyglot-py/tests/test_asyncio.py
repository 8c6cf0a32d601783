"""The asyncio bridge (`src/asyncio.rs`): cancelling an awaitable cancels its call, in
the worker too; calls start at the loop's next turn, awaited or not; event loops on
several threads at once, and one after another, each get their completions."""

from __future__ import annotations

import asyncio
import gc
import os
import threading
import time

import pytest

import polyglot
from conftest import wait_until


def in_flight(api, module):
    return api.module(module)["in_flight"]


def test_a_cancelled_acall_cancels_the_call_in_the_worker(open_api, echo_modules, tmp_path):
    api = open_api(echo_modules.dir)
    marker = tmp_path / "cancelled"

    async def main():
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(api.acall("echo", "sleep", 10_000, str(marker)), 0.3)

    asyncio.run(main())
    # The worker's call was dropped (it writes the marker then), well before its 10 s.
    wait_until("the worker saw the cancel", marker.exists, within=5)
    wait_until("no call in flight", lambda: in_flight(api, "echo") == 0, within=5)


def test_an_acall_cancelled_before_the_loop_turns_never_starts(open_api, echo_modules,
                                                                tmp_path):
    api = open_api(echo_modules.dir)
    marker = tmp_path / "cancelled"

    async def main():
        fut = api.acall("echo", "sleep", 10_000, str(marker))
        assert fut.cancel() and fut.cancelled()
        assert not fut.cancel() or fut.cancelled()  # again: nothing more to do
        await asyncio.sleep(0.3)
        return in_flight(api, "echo")

    # Started, it would be in flight for 10 s, or have left the marker when cancelled.
    assert asyncio.run(main()) == 0
    assert not marker.exists()
    assert api.call("echo", "echo", "after") == "after"


def test_an_acall_starts_at_the_next_turn_of_the_loop_even_if_not_awaited(echo_modules):
    with polyglot.Runtime(echo_modules.dir) as rt:
        async def main():
            fut = rt.acall("echo", "echo", "x")
            assert isinstance(fut, asyncio.Future) and not fut.done()
            deadline = time.monotonic() + 5
            while not fut.done() and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            return fut.result()

        assert asyncio.run(main()) == "x"


def test_event_loops_on_several_threads_at_once(open_api, echo_modules):
    api = open_api(echo_modules.dir)
    results = {}
    errors = []

    def run(t):
        async def main():
            return await asyncio.gather(
                *(api.acall("echo", "echo", [t, i]) for i in range(200)),
                *(api.acall("crypto", "blake3", params={"data": bytes([t, i])})
                  for i in range(50)))
        try:
            results[t] = asyncio.run(main())
        except BaseException as e:  # noqa: BLE001 - reported by the test below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert not errors, errors
    for t in range(4):
        assert results[t][:200] == [[t, i] for i in range(200)]
        assert results[t][200:] == [polyglot.blake3_hex(bytes([t, i])) for i in range(50)]


def test_loops_one_after_another_do_not_pile_up(echo_modules):
    # Each loop gets a queue and a socket pair; those of loops that are gone are freed
    # when the next loop makes its first call.
    def fds():
        return len(os.listdir("/proc/self/fd"))

    with polyglot.Runtime(echo_modules.dir) as rt:
        async def main(i):
            return await rt.acall("echo", "echo", i)

        assert asyncio.run(main(-1)) == -1
        gc.collect()
        before = fds()
        for i in range(30):
            assert asyncio.run(main(i)) == i
            gc.collect()
        assert fds() <= before + 4, (before, fds())


def test_a_loop_closed_with_calls_in_flight_leaves_the_runtime_serving(echo_modules):
    with polyglot.Runtime(echo_modules.dir) as rt:
        loop = asyncio.new_event_loop()

        async def leave():
            rt.acall("echo", "sleep", 200)  # started, never awaited
            rt.acall("echo", "sleep", 200)
            await asyncio.sleep(0.05)

        loop.run_until_complete(leave())
        loop.close()
        time.sleep(0.3)  # their completions arrive for a loop that is gone

        async def again():
            return await rt.acall("echo", "echo", "still serving")

        assert asyncio.run(again()) == "still serving"
        assert rt.call("echo", "echo", 1) == 1
