"""The worker's dispatch, in-process (`run_session` runs the real framing and dispatch on
byte streams): params mapping, Context, errors, health, shutdown, frame limits."""

from __future__ import annotations

import asyncio
import io
import math
import threading
import time
from typing import Any, Dict, List

import pytest

from polyglot_worker import Context, MethodError, Worker, parse_handshake
from polyglot_worker.testing import encode_stream, run_session, split_output


def make_worker(**kwargs: Any) -> Worker:
    w = Worker("unit", version="9.9.9", max_concurrency=kwargs.pop("max_concurrency", 4))

    @w.method
    def args(*a: Any, **kw: Any) -> Dict[str, Any]:
        return {"args": list(a), "kwargs": kw}

    @w.method
    def pair(a: Any, b: Any = "default") -> List[Any]:
        return [a, b]

    @w.method("withCtx")
    def with_ctx(x: Any, ctx: Context) -> List[Any]:
        return [x, ctx.call_id, ctx.method, ctx.timeout_ms]

    @w.method(name="annotated")
    def annotated(x: Any, context: "Context") -> Any:
        return context.call_id

    @w.method
    async def asleep(ms: int, ctx: Context) -> int:
        ctx.progress("started")
        await asyncio.sleep(ms / 1000)
        return ms

    @w.method
    def buggy() -> None:
        return len(5)  # type: ignore[arg-type]  # a TypeError inside the method

    @w.method
    def returns(kind: str) -> Any:
        return {"set": {1}, "huge": 2**70, "nan": math.nan, "bytes": b"\x00\xff", "tuple": (1, 2)}[kind]

    @w.method
    def bad_log(ctx: Context) -> None:
        ctx.log("loud", "x")

    return w


def answers(worker: Worker, messages: List[Dict[str, Any]], **kwargs: Any) -> Dict[Any, Dict[str, Any]]:
    return run_session(worker, messages, **kwargs).responses


def test_params_mapping() -> None:
    r = answers(make_worker(), [
        {"id": 1, "method": "args", "params": [1, "a"]},
        {"id": 2, "method": "args", "params": {"k": 1}},
        {"id": 3, "method": "args"},
        {"id": 4, "method": "args", "params": None},
        {"id": 5, "method": "args", "params": "scalar"},
        {"id": 6, "method": "args", "params": {"$bytes": "AQ=="}},
        {"id": 7, "method": "pair", "params": [1]},
        {"id": 8, "method": "pair", "params": {"b": 2, "a": 1}},
    ])
    assert r[1]["result"] == {"args": [1, "a"], "kwargs": {}}
    assert r[2]["result"] == {"args": [], "kwargs": {"k": 1}}
    assert r[3]["result"] == r[4]["result"] == {"args": [], "kwargs": {}}
    assert r[5]["result"] == {"args": ["scalar"], "kwargs": {}}
    assert r[6]["result"] == {"args": [b"\x01"], "kwargs": {}}
    assert r[7]["result"] == [1, "default"]
    assert r[8]["result"] == [1, 2]


def test_params_that_do_not_fit_are_invalid_params_but_bugs_are_internal() -> None:
    r = answers(make_worker(), [
        {"id": 1, "method": "pair", "params": [1, 2, 3]},
        {"id": 2, "method": "pair", "params": {"c": 1}},
        {"id": 3, "method": "pair"},
        {"id": 4, "method": "buggy"},
        {"id": 5, "method": "withCtx", "params": {"x": 1, "ctx": 2}},
    ])
    for i in (1, 2, 3, 5):
        assert r[i]["error"]["code"] == "INVALID_PARAMS", r[i]
    assert "pair" in r[1]["error"]["message"]
    assert r[4]["error"]["code"] == "INTERNAL"
    assert "TypeError" in r[4]["error"]["message"]


def test_context_is_injected_by_name_or_annotation() -> None:
    r = answers(make_worker(), [
        {"id": "c", "method": "withCtx", "params": [1], "timeoutMs": 250},
        {"id": 9, "method": "annotated", "params": {"x": 0}},
    ])
    assert r["c"]["result"] == [1, "c", "withCtx", 250]
    assert r[9]["result"] == 9


def test_results_outside_the_data_model_become_internal_errors() -> None:
    r = answers(make_worker(), [
        {"id": i, "method": "returns", "params": [k]} for i, k in enumerate(["set", "huge", "nan", "bytes", "tuple"])
    ])
    for i in (0, 1, 2):
        assert r[i]["error"]["code"] == "INTERNAL"
        assert "cannot be sent" in r[i]["error"]["message"]
    assert r[3]["result"] == b"\x00\xff"
    assert r[4]["result"] == [1, 2]


@pytest.mark.parametrize("codec", ["json", "msgpack"])
def test_response_over_the_frame_limit_becomes_frame_too_large(codec: str) -> None:
    w = Worker("unit")

    @w.method
    def big(n: int) -> str:
        return "x" * n

    r = answers(w, [{"id": 1, "method": "big", "params": [500]}, {"id": 2, "method": "big", "params": [10]}],
                codec=codec, max_frame=200)
    assert r[1]["error"]["code"] == "FRAME_TOO_LARGE"
    assert "200" in r[1]["error"]["message"]
    assert r[2]["result"] == "x" * 10


def test_progress_precedes_the_response_and_stops_after_it() -> None:
    w = Worker("unit", max_concurrency=2)
    kept: List[Context] = []

    @w.method
    def steps(n: int, ctx: Context) -> int:
        for i in range(n):
            ctx.progress(i)
        kept.append(ctx)
        return n

    @w.method
    def late() -> str:
        deadline = time.monotonic() + 5
        while not (kept and kept[0]._done):  # wait until call 1 is answered
            assert time.monotonic() < deadline
            time.sleep(0.001)
        kept[0].progress("too late")  # dropped
        return "done"

    session = run_session(w, [
        {"id": 1, "method": "steps", "params": [50]},
        {"method": "steps", "params": [3]},  # a notification's progress goes nowhere
    ])
    assert session.messages[:-1] == [{"id": 1, "progress": i} for i in range(50)]
    assert session.messages[-1]["result"] == 50
    kept.clear()
    session = run_session(w, [{"id": 1, "method": "steps", "params": [1]}, {"id": 2, "method": "late"}],
                          shutdown=True)
    assert [m for m in session.messages if "progress" in m] == [{"id": 1, "progress": 0}]
    assert session.responses[2]["result"] == "done"


def test_log_with_an_unknown_level_fails_the_call() -> None:
    r = answers(make_worker(), [{"id": 1, "method": "bad_log"}])
    assert r[1]["error"]["code"] == "INTERNAL" and "level" in r[1]["error"]["message"]


def test_notifications_run_but_are_never_answered() -> None:
    w = Worker("unit")
    ran = threading.Event()

    @w.method
    def note(x: int) -> int:
        ran.set()
        return x

    session = run_session(w, [
        {"method": "note", "params": [1]},
        {"method": "nope"},
        {"method": "$health"},
        {"method": "$nope"},
        {"method": "note", "params": [1, 2, 3]},
    ])
    assert ran.is_set()
    assert session.messages == []


def test_health_variants() -> None:
    def health_of(fn: Any) -> Dict[str, Any]:
        w = Worker("unit")
        w.health(fn)
        return answers(w, [{"id": 1, "method": "$health"}])[1]

    assert health_of(lambda: None)["result"] == {"status": "ok"}
    assert health_of(lambda: {"model": "loaded"})["result"] == {"status": "ok", "model": "loaded"}
    assert health_of(lambda: {"status": "degraded", "reason": "slow disk"})["result"] == {
        "status": "degraded", "reason": "slow disk"}

    def sick() -> None:
        raise RuntimeError("model not loaded")

    err = health_of(sick)["error"]
    assert err["code"] == "UNHEALTHY" and "model not loaded" in err["message"]

    def not_ready() -> None:
        raise MethodError("NOT_READY", "warming up")

    assert health_of(not_ready)["error"]["code"] == "NOT_READY"

    async def async_health() -> Dict[str, Any]:
        await asyncio.sleep(0)
        return {"async": True}

    assert health_of(async_health)["result"] == {"status": "ok", "async": True}
    assert health_of(lambda: "fine")["error"]["code"] == "UNHEALTHY"


def test_shutdown_refuses_new_calls_and_finishes_old_ones() -> None:
    session = run_session(make_worker(), [
        {"id": 1, "method": "asleep", "params": [100]},
        {"id": 2, "method": "$shutdown"},  # with an id: acknowledged
        {"id": 3, "method": "args"},
        {"id": 4, "method": "$health"},
        {"method": "$cancel", "params": {"id": 1}},
    ], shutdown=False)
    r = session.responses
    assert session.status == 0
    assert r[2]["result"] is None
    assert r[3]["error"]["code"] == r[4]["error"]["code"] == "SHUTTING_DOWN"
    assert r[1]["error"]["code"] == "CANCELLED"  # $cancel still works while draining


def test_cancel_with_an_id_is_acknowledged_and_odd_targets_ignored() -> None:
    r = answers(make_worker(), [
        {"id": 1, "method": "asleep", "params": [5000]},
        {"id": 2, "method": "$cancel", "params": {"id": 1}},
        {"method": "$cancel", "params": {"id": True}},
        {"method": "$cancel", "params": [1]},
        {"method": "$cancel"},
    ])
    assert r[1]["error"] == {"code": "CANCELLED", "message": "cancelled by the host"}
    assert r[2]["result"] is None


def test_a_duplicate_id_in_flight_is_an_invalid_request() -> None:
    session = run_session(make_worker(), [
        {"id": 1, "method": "asleep", "params": [100]},
        {"id": 1, "method": "args"},
    ])
    codes = [m.get("error", {}).get("code") for m in session.messages if "progress" not in m]
    assert codes == ["INVALID_REQUEST", None]


def test_handshake_and_response_fields() -> None:
    session = run_session(make_worker(max_concurrency=3), [{"id": 1, "method": "pair", "params": [1, 2]}])
    hs = session.handshake
    assert (hs.module, hs.version, hs.max_concurrency, hs.language) == ("unit", "9.9.9", 3, "python")
    assert hs.methods == sorted(hs.methods) and "withCtx" in hs.methods
    resp = session.responses[1]
    assert list(resp) == ["id", "result", "timestamp", "executionTime"]
    assert isinstance(resp["timestamp"], int) and resp["timestamp"] > 1_600_000_000_000
    assert isinstance(resp["executionTime"], int) and resp["executionTime"] >= 0


def test_input_end_abandons_calls_still_running() -> None:
    w = make_worker()
    out = io.BytesIO()
    status = w.run(io.BytesIO(encode_stream([{"id": 1, "method": "asleep", "params": [10_000]}])), out)
    assert status == 0
    handshake, messages = split_output(out.getvalue())
    assert handshake.module == "unit"
    assert [m for m in messages if "result" in m or "error" in m] == []


def test_registration_rules() -> None:
    w = Worker("unit")

    def f() -> None: ...

    assert w.method(f) is f
    with pytest.raises(ValueError, match="twice"):
        w.method(f)
    with pytest.raises(ValueError, match="reserved"):
        w.method("$mine")(lambda: None)
    with pytest.raises(TypeError, match="once"):
        w.method("a", name="b")
    with pytest.raises(ValueError, match="max_concurrency"):
        Worker("x", max_concurrency=0)
    assert parse_handshake(w.handshake().to_line()).methods == ["f"]
