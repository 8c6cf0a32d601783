"""Event streams in both modes: workers, reloads and deployments as dicts; the ways a
stream ends (a timeout, close, the with block); async iteration."""

from __future__ import annotations

import asyncio
import json
import time

import polyglot


def collect_until(stream, done):
    """The events of `stream` up to and including the first for which `done` is true."""
    seen = []
    for e in stream:
        seen.append(e)
        if done(e):
            return seen
    raise AssertionError(f"the stream ended first; it gave {seen}")


def test_a_reload_shows_as_events(open_api, modules):
    folder = modules.add("echo", "rust")
    api = open_api(modules.dir)
    manifest = json.loads((folder / "module.json").read_text())
    manifest["version"] = "1.1.0"
    (folder / "module.json").write_text(json.dumps(manifest))

    with api.events(["echo"], timeout=30) as stream:
        report = api.reload("echo")
        assert report == {"module": "echo", "old_version": "1.0.0", "new_version": "1.1.0"}
        seen = collect_until(stream, lambda e: e["type"] == "reload_done")
    assert stream.closed
    started = [e for e in seen if e["type"] == "worker_started"]
    assert started and started[0]["version"] == "1.1.0" and started[0]["pid"] > 0
    done = seen[-1]
    assert done["category"] == "runtime" and done["module"] == "echo"
    assert (done["old_version"], done["new_version"]) == ("1.0.0", "1.1.0")
    assert done["timestamp_ms"] > 1_600_000_000_000
    assert api.call_reply("echo", "echo", 1).version == "1.1.0"


def test_a_deployment_shows_as_events(open_api, modules, tmp_path):
    modules.add("svc", "rust")
    v2 = modules.add("svc", "rust", root=tmp_path / "releases", folder="v2", version="2.0.0")
    api = open_api(modules.dir)
    with api.events(["svc"], timeout=30) as stream:
        api.deploy("svc", v2)
        seen = collect_until(stream, lambda e: e["type"] == "succeeded")
    deployment = [e for e in seen if e["category"] == "deployment"]
    types = [e["type"] for e in deployment]
    assert types[0] == "staged" and "started" in types and "promoted" in types, types
    started = next(e for e in deployment if e["type"] == "started")
    assert started["strategy"] == "immediate" and started["from"] == "1.0.0"
    assert all(e["version"] == "2.0.0" and e["message"] for e in deployment)


def test_a_crash_shows_as_a_worker_exit(open_api, modules):
    modules.add("echo", "rust")
    api = open_api(modules.dir)
    stream = api.events(timeout=30)
    try:
        api.call("echo", "crash")
    except polyglot.WorkerExited:
        pass
    seen = collect_until(stream, lambda e: e["type"] == "worker_exited")
    assert seen[-1]["module"] == "echo" and seen[-1]["instance"] == 0
    assert "exit status 3" in seen[-1]["reason"]
    stream.close()
    assert list(stream) == []


def test_quiet_streams_end_by_timeout_or_get_none(open_api, modules):
    modules.add("echo", "rust")
    api = open_api(modules.dir)
    stream = api.events(["nothing-happens-here"], timeout=0.3)
    started = time.monotonic()
    assert list(stream) == []
    assert 0.25 < time.monotonic() - started < 5
    assert stream.get(timeout=0.05) is None
    assert repr(stream) == "<polyglot.EventStream open>"
    stream.close()
    assert repr(stream) == "<polyglot.EventStream closed>"


def test_async_iteration(open_api, modules):
    modules.add("echo", "rust")
    api = open_api(modules.dir)

    async def main():
        stream = api.events(timeout=30)
        crash = asyncio.ensure_future(api.acall("echo", "crash"))
        async for e in stream:
            if e["type"] == "worker_exited":
                break
        try:
            await crash
        except polyglot.WorkerExited:
            pass
        quiet = api.events(["nothing"], timeout=0.1)
        return e, [x async for x in quiet]

    e, rest = asyncio.run(main())
    assert e["module"] == "echo" and rest == []
