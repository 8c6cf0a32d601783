"""Replays every case of tests/vectors/ through the SDK's real code: codecs, frame
decoders, envelope validation, handshake validation, and the worker's dispatch."""

from __future__ import annotations

from typing import Any, List

import pytest

from conftest import load_vectors, same, vector_cases
from polyglot_worker import (
    InvalidHandshake,
    InvalidMessage,
    MethodError,
    ProtocolError,
    Worker,
    build_handshake,
    check_handshake,
    get_codec,
    parse_handshake,
    parse_message,
    parse_request,
)
from polyglot_worker.codec import Frame, TooLarge, frame_decoder
from polyglot_worker.envelope import ErrorObject, Log, Progress, Response
from polyglot_worker.testing import run_session
from polyglot_worker.values import from_json_form, to_json_form


def payload(case: dict) -> bytes:
    """A case's `frame` as bytes: JSON text, or MessagePack hex."""
    return case["frame"].encode() if case["codec"] == "json" else bytes.fromhex(case["frame"])


# ---------------------------------------------------------------- values.json
@pytest.mark.parametrize("case", vector_cases("values.json"))
def test_values(case: dict) -> None:
    json_codec = get_codec("json")
    if case.get("valid", True) is False:
        with pytest.raises(ProtocolError, match="(?i)bytes"):
            json_codec.decode(case["json"].encode())
        return
    expected = from_json_form(case["value"])
    msgpack_codec = get_codec("msgpack")
    from_json = json_codec.decode(case["json"].encode())
    from_msgpack = msgpack_codec.decode(bytes.fromhex(case["msgpack"]))
    assert same(from_json, expected)
    assert same(from_msgpack, expected)
    # Encoding gives the vector's bytes (compact JSON; smallest MessagePack forms) and
    # decodes back to the value.
    assert json_codec.encode(expected).decode() == case["json"]
    assert msgpack_codec.encode(expected).hex() == case["msgpack"]
    for codec in (json_codec, msgpack_codec):
        assert same(codec.decode(codec.encode(expected)), expected)
    assert to_json_form(from_msgpack) == case["value"]


# ---------------------------------------------------------------- requests.json
@pytest.mark.parametrize("case", vector_cases("requests.json"))
def test_requests(case: dict) -> None:
    codec = get_codec(case["codec"])
    if not case["valid"]:
        with pytest.raises(ProtocolError) as err:
            parse_request(codec.decode(payload(case)))
        assert case["errorMentions"].lower() in str(err.value).lower()
        return
    req = parse_request(codec.decode(payload(case)))
    expect = case["expect"]
    assert same(req.id, expect["id"]) if "id" in expect else req.id is None
    assert req.method == expect["method"]
    assert same(req.params, from_json_form(expect["params"]))
    assert req.timestamp == expect.get("timestamp")
    assert req.timeout_ms == expect.get("timeoutMs")
    assert req.notification is expect["notification"]


# ---------------------------------------------------------------- messages.json
@pytest.mark.parametrize("case", vector_cases("messages.json"))
def test_messages(case: dict) -> None:
    codec = get_codec(case["codec"])
    if not case["valid"]:
        with pytest.raises(InvalidMessage) as err:
            parse_message(codec.decode(payload(case)))
        assert case["errorMentions"].lower() in str(err.value).lower()
        return
    msg = parse_message(codec.decode(payload(case)))
    expect = dict(case["expect"])
    assert msg.kind == expect.pop("kind")
    if isinstance(msg, Response):
        assert same(msg.id, expect["id"])
        assert msg.execution_time == expect.get("executionTime")
        if "result" in expect:
            assert msg.error is None
            assert same(msg.result, from_json_form(expect["result"]))
        else:
            e = expect["error"]
            assert msg.error == ErrorObject(e["code"], e["message"], from_json_form(e.get("data")))
    elif isinstance(msg, Progress):
        assert same(msg.id, expect["id"])
        assert same(msg.progress, from_json_form(expect["progress"]))
    else:
        assert isinstance(msg, Log)
        assert (msg.level, msg.message, msg.fields) == (expect["level"], expect["message"], expect.get("fields"))


# ---------------------------------------------------------------- handshakes.json
HANDSHAKE_FIELDS = ("polyglot", "module", "version", "codec", "methods", "maxConcurrency")


def handshake_fields(hs: Any) -> dict:
    d = hs.to_dict()
    return {k: d[k] for k in HANDSHAKE_FIELDS}


@pytest.mark.parametrize("case", vector_cases("handshakes.json"))
def test_handshakes(case: dict) -> None:
    manifest = case["manifest"]
    rules = dict(name=manifest["name"], codec=manifest["codec"], capabilities=manifest["capabilities"])
    if not case["valid"]:
        with pytest.raises(InvalidHandshake) as err:
            check_handshake(parse_handshake(case["line"]), **rules)
        assert case["errorMentions"].lower() in str(err.value).lower()
        return
    hs = parse_handshake(case["line"])
    assert handshake_fields(hs) == case["expect"]
    check_handshake(hs, **rules)
    # The SDK's own builder, given the expected fields, writes a line that reads back the same.
    expect = case["expect"]
    built = build_handshake(
        expect["module"],
        expect["version"],
        expect["methods"],
        codec=expect["codec"],
        max_concurrency=expect["maxConcurrency"],
        pid=4242,
    )
    line = built.to_line()
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert handshake_fields(parse_handshake(line)) == expect


# The cases whose fields are wrong whatever the manifest: the SDK's validator refuses
# them on its own (the others break a manifest rule, which needs `check_handshake`).
FIELD_CASES = {
    "wrong protocol version": "protocol version",
    "missing protocol version": "polyglot",
    "zero concurrency": "maxConcurrency",
    "unknown codec": "codec",
    "methods missing": "methods",
}


@pytest.mark.parametrize("name", sorted(FIELD_CASES))
def test_handshake_validator_refuses_bad_fields_without_a_manifest(name: str) -> None:
    (case,) = [c for c in load_vectors("handshakes.json")["cases"] if c["name"] == name]
    with pytest.raises(InvalidHandshake, match=f"(?i){FIELD_CASES[name]}"):
        parse_handshake(case["line"])


# ---------------------------------------------------------------- frames.json
def read_stream(codec: str, limit: int, stream: bytes, chunk: int) -> List[dict]:
    decoder = frame_decoder(codec, limit)
    out: List[dict] = []
    for i in range(0, len(stream), chunk):
        for event in decoder.feed(stream[i : i + chunk]):
            if isinstance(event, Frame):
                out.append({"frame": event.payload.hex()})
            else:
                assert isinstance(event, TooLarge)
                out.append({"tooLarge": True, "size": event.size, "id": event.id})
    if decoder.finish() is not None:
        out.append({"truncated": True})
    return out


@pytest.mark.parametrize("case", vector_cases("frames.json"))
def test_frames(case: dict) -> None:
    stream = bytes.fromhex(case["stream"])
    # Whatever the read sizes, the reader yields the same frames.
    for chunk in (max(1, len(stream)), 1, 2, 3, 7, 64):
        assert read_stream(case["codec"], case["limit"], stream, chunk) == case["frames"], f"chunk {chunk}"


# ---------------------------------------------------------------- sessions.json
def vectors_worker() -> Worker:
    """The handlers described in sessions.json's `handlers` text."""
    worker = Worker("vectors", version="1.0.0", max_concurrency=4)

    @worker.method(raw=True)
    def echo(params: Any) -> Any:
        return params

    @worker.method
    def add(a: Any, b: Any) -> int:
        if not all(isinstance(x, int) and not isinstance(x, bool) for x in (a, b)):
            raise MethodError("INVALID_PARAMS", "add takes two integers")
        return a + b

    @worker.method
    def fail(code: str, message: str) -> None:
        raise MethodError(code, message)

    @worker.method
    def boom() -> None:
        raise RuntimeError("boom")

    return worker


def test_sessions_handlers_text_is_what_vectors_worker_registers() -> None:
    # If the vectors' handlers change, this replay must change with them.
    text = load_vectors("sessions.json")["handlers"]
    for name in vectors_worker().methods:
        assert f"  {name}(" in text


@pytest.mark.parametrize("case", vector_cases("sessions.json"))
def test_sessions(case: dict) -> None:
    send = [from_json_form(m) for m in case["send"]]
    session = run_session(vectors_worker(), send, codec=case["codec"])
    assert session.status == 0
    assert session.handshake.module == "vectors" and session.handshake.codec == case["codec"]
    for msg in session.messages:
        parse_message(msg)  # everything the worker wrote is a valid message
    # Exactly one response per request with an id; none to notifications.
    ids = [m["id"] for m in send if "id" in m]
    answered = [m["id"] for m in session.messages if "result" in m or "error" in m]
    assert sorted(map(repr, answered)) == sorted(map(repr, ids))
    for expect in case["expect"]:
        got = session.responses[expect["id"]]
        assert same(got["id"], expect["id"])
        if "result" in expect:
            assert "error" not in got, got
            assert same(got["result"], from_json_form(expect["result"]))
        if "error" in expect:
            assert "result" not in got, got
            assert got["error"]["code"] == expect["error"]["code"]
            if "message" in expect["error"]:
                assert got["error"]["message"] == expect["error"]["message"]
