"""Codecs, values and the frame decoders beyond the vectors: the data model's edges,
oversize frames at any read size, and reading an id from a frame's first bytes."""

from __future__ import annotations

import json
import math
import re
import sys
from typing import Any

import pytest

from polyglot_worker import DecodeError, EncodeError, MissingDependency, get_codec
from polyglot_worker.codec import (
    HEAD_BYTES,
    Frame,
    TooLarge,
    Truncated,
    frame_decoder,
    json_id_from_head,
    msgpack_id_from_head,
)


@pytest.fixture(params=["json", "msgpack"])
def codec(request: Any) -> Any:
    return get_codec(request.param)


@pytest.mark.parametrize(
    "value, mentions",
    [
        (2**64, "64-bit"),
        (-(2**63) - 1, "64-bit"),
        (math.nan, "not a JSON number"),
        ([1, {"x": math.inf}], "$[1].x"),
        ({1: "a"}, "map key"),
        ({"ok": {(1, 2): 3}}, "map key"),
        (object(), "not a protocol value"),
        ({"s": {1, 2}}, "set"),
        ("lone \ud800 surrogate", "encode"),
    ],
)
def test_values_outside_the_data_model_are_refused(codec: Any, value: Any, mentions: str) -> None:
    with pytest.raises(EncodeError, match="(?i)" + re.escape(mentions)):
        codec.encode(value)


def test_tuples_and_bytearrays_are_sent_as_arrays_and_binary(codec: Any) -> None:
    assert codec.decode(codec.encode((1, bytearray(b"\x01"), memoryview(b"\x02")))) == [1, b"\x01", b"\x02"]


@pytest.mark.parametrize(
    "text, mentions",
    [
        ("NaN", "NaN"),
        ("[Infinity]", "Infinity"),
        ("1e400", "out of range"),
        ("18446744073709551616", "64-bit"),
        ('{"$bytes":"aGl="}', "canonical"),
        ('{"$bytes":"aGk"}', "base64"),
        ('{"$bytes":"aG k="}', "base64"),
        ("", "JSON"),
    ],
)
def test_json_decoder_refuses(text: str, mentions: str) -> None:
    with pytest.raises(DecodeError, match=f"(?i){mentions}"):
        get_codec("json").decode(text.encode())


def test_json_decoder_refuses_invalid_utf8() -> None:
    with pytest.raises(DecodeError, match="UTF-8"):
        get_codec("json").decode(b'"\xff"')


def test_json_encoder_writes_compact_utf8_with_escaped_newlines() -> None:
    out = get_codec("json").encode({"id": 1, "s": "é\n\u2028"})
    assert out == '{"id":1,"s":"é\\n\u2028"}'.encode("utf-8")
    assert b"\n" not in out


@pytest.mark.parametrize(
    "payload, mentions",
    [
        ("810102", "key"),  # {1: 2}
        ("d40100", "extension"),  # fixext 1
        ("c0c0", "extra"),  # two values in one frame
        ("92", ""),  # cut off
        ("81c40161c0", "key"),  # a binary key
    ],
)
def test_msgpack_decoder_refuses(payload: str, mentions: str) -> None:
    with pytest.raises(DecodeError, match=f"(?i){mentions}"):
        get_codec("msgpack").decode(bytes.fromhex(payload))


def test_msgpack_codec_without_the_package_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "msgpack", None)  # makes `import msgpack` fail
    with pytest.raises(MissingDependency, match="'msgpack' package") as err:
        get_codec("msgpack")
    assert "pip install" in str(err.value)
    get_codec("json")  # the JSON codec needs nothing
    frame_decoder("msgpack")  # nor does splitting MessagePack frames


def test_unknown_codec() -> None:
    with pytest.raises(ValueError, match="xml"):
        get_codec("xml")


# ---------------------------------------------------------------- frame decoders
def feed_all(decoder: Any, stream: bytes, chunk: int) -> list:
    events = []
    for i in range(0, len(stream), chunk):
        events += decoder.feed(stream[i : i + chunk])
    return events


@pytest.mark.parametrize("chunk", [1, 5, 64 * 1024])
def test_oversize_json_line_is_never_buffered(chunk: int) -> None:
    decoder = frame_decoder("json", 1000)
    head = b'{"id":"big-1","method":"echo","params":["'
    body = b"x" * 300_000
    events = decoder.feed(head)
    biggest = 0
    for i in range(0, len(body), chunk):
        events += decoder.feed(body[i : i + chunk])
        biggest = max(biggest, len(decoder._buf), len(decoder._skip_head))
    events += feed_all(decoder, b'"]}\r\n{"id":2}\n', 3)
    size = len(head) + len(body) + 3
    assert events == [TooLarge(size, "big-1"), Frame(b'{"id":2}')]
    assert biggest <= 1000 + max(chunk, HEAD_BYTES) + 2
    assert decoder.finish() is None


def test_oversize_msgpack_frame_is_never_buffered() -> None:
    codec = get_codec("msgpack")
    big = codec.frame(codec.encode({"id": -5, "method": "echo", "params": [b"\x00" * 200_000]}))
    small = codec.frame(codec.encode({"id": 6, "method": "echo"}))
    decoder = frame_decoder("msgpack", 1000)
    events = []
    biggest = 0
    for i in range(0, len(big + small), 4096):
        events += decoder.feed((big + small)[i : i + 4096])
        biggest = max(biggest, len(decoder._buf))
    assert events == [TooLarge(len(big) - 4, -5), Frame(small[4:])]
    assert biggest <= 1000 + 4096
    assert decoder.finish() is None


def test_json_line_of_exactly_the_limit_passes_with_or_without_cr() -> None:
    line = b'{"id":1,"s":"' + b"a" * 20 + b'"}'
    for ending in (b"\n", b"\r\n"):
        for chunk in (1, 2, 100):
            decoder = frame_decoder("json", len(line))
            assert feed_all(decoder, line + ending, chunk) == [Frame(line)]
            decoder = frame_decoder("json", len(line) - 1)
            assert feed_all(decoder, line + ending, chunk) == [TooLarge(len(line), 1)]


def test_blank_lines_are_skipped_and_a_cut_frame_is_truncated() -> None:
    decoder = frame_decoder("json", 100)
    assert decoder.feed(b"\n\r\n{}\n{\"id\"") == [Frame(b"{}")]
    assert decoder.finish() == Truncated(5)
    skipping = frame_decoder("json", 4)
    assert skipping.feed(b"0123456789") == []
    assert skipping.finish() == Truncated(10)


@pytest.mark.parametrize(
    "head, expected",
    [
        (b'{"id":7,"method":"x"}', 7),
        (b' { "id" : -3 }', -3),
        (b'{"id":18446744073709551615,', 2**64 - 1),
        (b'{"id":18446744073709551616,', None),
        (b'{"id":"a\\"b\\u00e9","x', 'a"bé'),
        (b'{"id":"cut', None),
        (b'{"id":12', None),  # the number may go on
        (b'{"id":1.5,', None),
        (b'{"id":null,', None),
        (b'{"method":"x","id":1}', None),
        (b"[1]", None),
        (b"", None),
    ],
)
def test_json_id_from_head(head: bytes, expected: Any) -> None:
    assert json_id_from_head(head) == expected


@pytest.mark.parametrize(
    "value, cut, expected",
    [
        ({"id": 7, "m": 1}, None, 7),
        ({"id": -40, "m": 1}, None, -40),
        ({"id": 2**64 - 1}, None, 2**64 - 1),
        ({"id": -(2**63)}, None, -(2**63)),
        ({"id": "s" * 40}, None, "s" * 40),
        ({"id": "s" * 300}, None, "s" * 300),
        ({"id": "s" * 40}, 20, None),
        ({"id": 1.5}, None, None),
        ({"m": 1, "id": 2}, None, None),
        ({f"k{i}": i for i in range(20)}, None, None),
    ],
)
def test_msgpack_id_from_head(value: dict, cut: Any, expected: Any) -> None:
    payload = get_codec("msgpack").encode(value)
    assert msgpack_id_from_head(payload[:cut]) == expected


def test_msgpack_id_behind_a_map16_header() -> None:
    value = {"id": "x", **{f"k{i}": i for i in range(20)}}
    payload = get_codec("msgpack").encode(value)
    assert payload[0] == 0xDE
    assert msgpack_id_from_head(payload) == "x"


def test_id_first_in_every_worker_message() -> None:
    from polyglot_worker.envelope import error_response, progress_message, result_response

    for msg in (result_response(1, "x", 5), error_response("a", "X", "y", {"d": 1}), progress_message(2, 0)):
        assert next(iter(msg)) == "id"
        assert json.loads(get_codec("json").encode(msg))["id"] == msg["id"]
