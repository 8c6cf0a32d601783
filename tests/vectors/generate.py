#!/usr/bin/env python3
"""Writes the protocol test vectors in this folder.

The cases are written here, once, as Python data; MessagePack bytes are produced by the
`msgpack` package so no hex is typed by hand. Run it after changing a case:

    python3 tests/vectors/generate.py

and commit the JSON files it writes. `tests/vectors/README.md` documents the format.
"""

from __future__ import annotations

import base64
import json
import pathlib
import struct

import msgpack

HERE = pathlib.Path(__file__).resolve().parent


def b(data: bytes) -> dict:
    """The JSON form of binary data."""
    return {"$bytes": base64.b64encode(data).decode()}


def to_wire(value):
    """JSON-form value -> Python value for msgpack (binary objects become bytes)."""
    if isinstance(value, dict):
        if set(value) == {"$bytes"}:
            return base64.b64decode(value["$bytes"], validate=True)
        return {k: to_wire(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_wire(v) for v in value]
    return value


def line(value) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def mp(value) -> str:
    return msgpack.packb(to_wire(value), use_bin_type=True).hex()


def frame_mp(value) -> str:
    payload = msgpack.packb(to_wire(value), use_bin_type=True)
    return (struct.pack(">I", len(payload)) + payload).hex()


# ---------------------------------------------------------------- values
VALUES = [
    ("null", None),
    ("true", True),
    ("false", False),
    ("zero", 0),
    ("small positive", 7),
    ("negative", -33),
    ("int64 min", -(2**63)),
    ("int64 max", 2**63 - 1),
    ("uint64 max", 2**64 - 1),
    ("float", 1.5),
    ("float with a whole value stays a float", 1.0),
    ("floats in an array stay floats", [1.0, 2.0, -3.0]),
    ("negative float", -0.25),
    ("empty string", ""),
    ("unicode string", "héllo, 世界 🌍"),
    ("string with newline and quote", 'line1\nline2 "quoted"'),
    ("empty array", []),
    ("nested array", [1, [2, [3, "x"]], None]),
    ("empty object", {}),
    ("object", {"a": 1, "b": [True, None], "c": {"d": "e"}}),
    ("empty binary", b(b"")),
    ("binary", b(b"hello")),
    ("binary with every byte value", b(bytes(range(256)))),
    ("binary inside structures", {"blob": b(b"\x00\x01\xff"), "list": [b(b"ab")]}),
    ("object with $bytes and another key is an object", {"$bytes": "aGk=", "other": 1}),
]

VALUES_INVALID_JSON = [
    ("$bytes that is not base64", '{"$bytes":"!!not base64!!"}'),
    ("$bytes that is not a string", '{"$bytes":42}'),
]


def values():
    cases = []
    for name, value in VALUES:
        cases.append({"name": name, "json": line(value), "msgpack": mp(value), "value": value})
    for name, text in VALUES_INVALID_JSON:
        cases.append({"name": name, "json": text, "valid": False})
    return {"cases": cases}


# ---------------------------------------------------------------- requests (worker side)
def request_cases():
    valid = [
        ("integer id", {"id": 7, "method": "upper", "params": ["hello"], "timestamp": 1732358400000},
         {"id": 7, "method": "upper", "params": ["hello"], "timestamp": 1732358400000, "notification": False}),
        ("string id", {"id": "call-a1", "method": "echo", "params": {"x": 1}},
         {"id": "call-a1", "method": "echo", "params": {"x": 1}, "notification": False}),
        ("zero id", {"id": 0, "method": "echo", "params": []},
         {"id": 0, "method": "echo", "params": [], "notification": False}),
        ("large unsigned id", {"id": 2**64 - 1, "method": "echo"},
         {"id": 2**64 - 1, "method": "echo", "params": None, "notification": False}),
        ("missing params is null", {"id": 1, "method": "echo"},
         {"id": 1, "method": "echo", "params": None, "notification": False}),
        ("binary params", {"id": 2, "method": "hash", "params": [b(b"\x00\x01\x02")]},
         {"id": 2, "method": "hash", "params": [b(b"\x00\x01\x02")], "notification": False}),
        ("timeout hint", {"id": 3, "method": "slow", "params": [], "timeoutMs": 2500},
         {"id": 3, "method": "slow", "params": [], "timeoutMs": 2500, "notification": False}),
        ("unknown fields are ignored", {"id": 4, "method": "echo", "params": 1, "future": {"x": 1}},
         {"id": 4, "method": "echo", "params": 1, "notification": False}),
        ("cancel notification", {"method": "$cancel", "params": {"id": 7}},
         {"method": "$cancel", "params": {"id": 7}, "notification": True}),
        ("shutdown notification", {"method": "$shutdown"},
         {"method": "$shutdown", "params": None, "notification": True}),
        ("health request", {"id": 9, "method": "$health"},
         {"id": 9, "method": "$health", "params": None, "notification": False}),
    ]
    invalid = [
        ("missing method", {"id": 1, "params": []}, "method"),
        ("method not a string", {"id": 1, "method": 5}, "method"),
        ("id is a float", {"id": 1.5, "method": "echo"}, "id"),
        ("id is an object", {"id": {"a": 1}, "method": "echo"}, "id"),
        ("id is null", {"id": None, "method": "echo"}, "id"),
        ("not an object", [1, 2, 3], "object"),
    ]
    cases = []
    for codec in ("json", "msgpack"):
        for name, msg, expect in valid:
            case = {"name": f"{codec}: {name}", "codec": codec, "valid": True, "expect": expect}
            case["frame"] = line(msg) if codec == "json" else mp(msg)
            cases.append(case)
        for name, msg, field in invalid:
            case = {"name": f"{codec}: {name}", "codec": codec, "valid": False, "errorMentions": field}
            case["frame"] = line(msg) if codec == "json" else mp(msg)
            cases.append(case)
    cases.append({"name": "json: not JSON at all", "codec": "json", "valid": False,
                  "frame": "hello world", "errorMentions": "JSON"})
    cases.append({"name": "json: truncated object", "codec": "json", "valid": False,
                  "frame": '{"id":1,"method":"ec', "errorMentions": "JSON"})
    return {"cases": cases}


# ---------------------------------------------------------------- worker messages (host side)
def message_cases():
    valid = [
        ("result", {"id": 7, "result": "HELLO", "timestamp": 1732358400001, "executionTime": 42},
         {"kind": "response", "id": 7, "result": "HELLO", "executionTime": 42}),
        ("null result is a result", {"id": 7, "result": None},
         {"kind": "response", "id": 7, "result": None}),
        ("string id echoed", {"id": "call-a1", "result": [1, 2]},
         {"kind": "response", "id": "call-a1", "result": [1, 2]}),
        ("error", {"id": 8, "error": {"code": "INVALID_PARAMS", "message": "upper takes one string",
                                      "data": {"got": "number"}}, "executionTime": 12},
         {"kind": "response", "id": 8, "error": {"code": "INVALID_PARAMS",
                                                  "message": "upper takes one string",
                                                  "data": {"got": "number"}}, "executionTime": 12}),
        ("error without data", {"id": 8, "error": {"code": "INTERNAL", "message": "boom"}},
         {"kind": "response", "id": 8, "error": {"code": "INTERNAL", "message": "boom"}}),
        ("binary result", {"id": 1, "result": b(b"\xde\xad\xbe\xef")},
         {"kind": "response", "id": 1, "result": b(b"\xde\xad\xbe\xef")}),
        ("progress", {"id": 7, "progress": {"done": 40, "total": 100}},
         {"kind": "progress", "id": 7, "progress": {"done": 40, "total": 100}}),
        ("log", {"log": {"level": "info", "message": "model loaded", "fields": {"ms": 812}}},
         {"kind": "log", "level": "info", "message": "model loaded", "fields": {"ms": 812}}),
        ("unknown fields are ignored", {"id": 2, "result": 1, "future": True},
         {"kind": "response", "id": 2, "result": 1}),
    ]
    invalid = [
        ("both result and error", {"id": 1, "result": 1, "error": {"code": "X", "message": "y"}}, "result"),
        ("neither result nor error", {"id": 1}, "result"),
        ("response without id", {"result": 1}, "id"),
        ("error without code", {"id": 1, "error": {"message": "y"}}, "code"),
        ("error without message", {"id": 1, "error": {"code": "X"}}, "message"),
        ("error not an object", {"id": 1, "error": "boom"}, "error"),
        ("log with unknown level", {"log": {"level": "loud", "message": "x"}}, "level"),
        ("negative executionTime", {"id": 1, "result": 1, "executionTime": -5}, "executionTime"),
    ]
    cases = []
    for codec in ("json", "msgpack"):
        for name, msg, expect in valid:
            case = {"name": f"{codec}: {name}", "codec": codec, "valid": True, "expect": expect}
            case["frame"] = line(msg) if codec == "json" else mp(msg)
            cases.append(case)
        for name, msg, field in invalid:
            case = {"name": f"{codec}: {name}", "codec": codec, "valid": False, "errorMentions": field}
            case["frame"] = line(msg) if codec == "json" else mp(msg)
            cases.append(case)
    return {"cases": cases}


# ---------------------------------------------------------------- handshakes
def handshake_cases():
    good = {"polyglot": 1, "module": "text-rust", "version": "1.2.0", "language": "rust",
            "codec": "json", "methods": ["upper", "wordCount"], "maxConcurrency": 64, "pid": 4242}
    manifest = {"name": "text-rust", "codec": "json", "capabilities": ["upper", "wordCount"]}
    cases = [
        {"name": "complete", "line": line(good), "valid": True, "manifest": manifest,
         "expect": {"polyglot": 1, "module": "text-rust", "version": "1.2.0", "codec": "json",
                    "methods": ["upper", "wordCount"], "maxConcurrency": 64}},
        {"name": "defaults: json codec, one call at a time", "valid": True, "manifest": manifest,
         "line": line({"polyglot": 1, "module": "text-rust", "version": "1.2.0",
                       "methods": ["upper", "wordCount", "extra"]}),
         "expect": {"polyglot": 1, "module": "text-rust", "version": "1.2.0", "codec": "json",
                    "methods": ["upper", "wordCount", "extra"], "maxConcurrency": 1}},
        {"name": "msgpack codec", "valid": True,
         "manifest": {"name": "text-rust", "codec": "msgpack", "capabilities": []},
         "line": line({**good, "codec": "msgpack"}),
         "expect": {"polyglot": 1, "module": "text-rust", "version": "1.2.0", "codec": "msgpack",
                    "methods": ["upper", "wordCount"], "maxConcurrency": 64}},
        {"name": "wrong protocol version", "valid": False, "manifest": manifest,
         "line": line({**good, "polyglot": 2}), "errorMentions": "protocol version"},
        {"name": "missing protocol version", "valid": False, "manifest": manifest,
         "line": line({k: v for k, v in good.items() if k != "polyglot"}), "errorMentions": "polyglot"},
        {"name": "other module", "valid": False, "manifest": manifest,
         "line": line({**good, "module": "text-python"}), "errorMentions": "module"},
        {"name": "other codec", "valid": False, "manifest": manifest,
         "line": line({**good, "codec": "msgpack"}), "errorMentions": "codec"},
        {"name": "capability not served", "valid": False,
         "manifest": {**manifest, "capabilities": ["upper", "wordCount", "reverse"]},
         "line": line(good), "errorMentions": "reverse"},
        {"name": "zero concurrency", "valid": False, "manifest": manifest,
         "line": line({**good, "maxConcurrency": 0}), "errorMentions": "maxConcurrency"},
        {"name": "unknown codec", "valid": False, "manifest": manifest,
         "line": line({**good, "codec": "xml"}), "errorMentions": "codec"},
        {"name": "methods missing", "valid": False, "manifest": manifest,
         "line": line({k: v for k, v in good.items() if k != "methods"}), "errorMentions": "methods"},
    ]
    return {"cases": cases}


# ---------------------------------------------------------------- framing
def frame_cases():
    req = {"id": 7, "method": "echo", "params": ["hi"]}
    big = {"id": 9, "method": "echo", "params": ["x" * 64]}
    big_str = {"id": "s-1", "method": "echo", "params": ["y" * 64]}
    small = {"id": 10, "method": "echo", "params": []}
    cases = []
    # json
    stream = (line(req) + "\n" + line(small) + "\r\n").encode()
    cases.append({"name": "json: two lines, one with CRLF", "codec": "json", "limit": 1024,
                  "stream": stream.hex(),
                  "frames": [{"frame": line(req).encode().hex()}, {"frame": line(small).encode().hex()}]})
    stream = (line(big) + "\n" + line(small) + "\n").encode()
    cases.append({"name": "json: oversize line is skipped, its id read, next frame intact",
                  "codec": "json", "limit": 48, "stream": stream.hex(),
                  "frames": [{"tooLarge": True, "size": len(line(big)), "id": 9},
                             {"frame": line(small).encode().hex()}]})
    stream = (line(big_str) + "\n" + line(small) + "\n").encode()
    cases.append({"name": "json: oversize line with a string id",
                  "codec": "json", "limit": 48, "stream": stream.hex(),
                  "frames": [{"tooLarge": True, "size": len(line(big_str)), "id": "s-1"},
                             {"frame": line(small).encode().hex()}]})
    stream = (line(req) + "\n" + '{"id":3,"me').encode()
    cases.append({"name": "json: end of stream inside a frame", "codec": "json", "limit": 1024,
                  "stream": stream.hex(),
                  "frames": [{"frame": line(req).encode().hex()}, {"truncated": True}]})
    cases.append({"name": "json: empty stream is a clean end", "codec": "json", "limit": 1024,
                  "stream": "", "frames": []})
    # msgpack
    stream = bytes.fromhex(frame_mp(req) + frame_mp(small))
    cases.append({"name": "msgpack: two frames", "codec": "msgpack", "limit": 1024,
                  "stream": stream.hex(),
                  "frames": [{"frame": mp(req)}, {"frame": mp(small)}]})
    big_payload = msgpack.packb(big, use_bin_type=True)
    stream = bytes.fromhex(frame_mp(big) + frame_mp(small))
    cases.append({"name": "msgpack: oversize frame is skipped, its id read, next frame intact",
                  "codec": "msgpack", "limit": 48, "stream": stream.hex(),
                  "frames": [{"tooLarge": True, "size": len(big_payload), "id": 9},
                             {"frame": mp(small)}]})
    stream = bytes.fromhex(frame_mp(req))[:-3]
    cases.append({"name": "msgpack: end of stream inside a frame", "codec": "msgpack", "limit": 1024,
                  "stream": stream.hex(), "frames": [{"truncated": True}]})
    stream = bytes.fromhex(frame_mp(req))[:2]
    cases.append({"name": "msgpack: end of stream inside the length prefix", "codec": "msgpack",
                  "limit": 1024, "stream": stream.hex(), "frames": [{"truncated": True}]})
    return {"cases": cases}


# ---------------------------------------------------------------- sessions (SDK behaviour)
SESSION_HANDLERS = """Every SDK's test registers these methods on a worker named "vectors"
(version "1.0.0") and replays each session against it through the SDK's real dispatch:
  echo(params)        -> returns params unchanged
  add([a, b])         -> a + b for two integers; anything else -> INVALID_PARAMS
  fail([code, msg])   -> an error response with that code and message
  boom()              -> an unexpected failure (exception / panic) -> INTERNAL
"""


def session_cases():
    def s(name, send, expect, codec="json"):
        return {"name": name, "codec": codec, "send": send, "expect": expect}

    cases = [
        s("echo returns params", [{"id": 1, "method": "echo", "params": ["a", 1, None]}],
          [{"id": 1, "result": ["a", 1, None]}]),
        s("string id echoed verbatim", [{"id": "abc", "method": "echo", "params": 5}],
          [{"id": "abc", "result": 5}]),
        s("binary round trip", [{"id": 2, "method": "echo", "params": [b(b"\x00\xff")]}],
          [{"id": 2, "result": [b(b"\x00\xff")]}]),
        s("add", [{"id": 3, "method": "add", "params": [2, 40]}], [{"id": 3, "result": 42}]),
        s("add with bad params", [{"id": 4, "method": "add", "params": ["x"]}],
          [{"id": 4, "error": {"code": "INVALID_PARAMS"}}]),
        s("method error keeps code and message",
          [{"id": 5, "method": "fail", "params": ["NOT_READY", "model not loaded"]}],
          [{"id": 5, "error": {"code": "NOT_READY", "message": "model not loaded"}}]),
        s("unexpected failure is INTERNAL", [{"id": 6, "method": "boom", "params": []}],
          [{"id": 6, "error": {"code": "INTERNAL"}}]),
        s("unknown method", [{"id": 7, "method": "nope"}],
          [{"id": 7, "error": {"code": "METHOD_NOT_FOUND"}}]),
        s("unknown reserved method", [{"id": 8, "method": "$nope"}],
          [{"id": 8, "error": {"code": "METHOD_NOT_FOUND"}}]),
        s("health", [{"id": 9, "method": "$health"}], [{"id": 9, "result": {"status": "ok"}}]),
        s("notification is not answered, then a call is",
          [{"method": "echo", "params": 1}, {"id": 10, "method": "echo", "params": 2}],
          [{"id": 10, "result": 2}]),
        s("cancel of an unknown id is ignored",
          [{"method": "$cancel", "params": {"id": 999}}, {"id": 11, "method": "echo", "params": 3}],
          [{"id": 11, "result": 3}]),
        s("invalid request with a readable id is answered",
          [{"id": 12, "method": 5}], [{"id": 12, "error": {"code": "INVALID_REQUEST"}}]),
        s("msgpack: echo with binary", [{"id": 1, "method": "echo", "params": [b(b"\x01\x02")]}],
          [{"id": 1, "result": [b(b"\x01\x02")]}], codec="msgpack"),
        s("msgpack: unknown method", [{"id": "m", "method": "nope"}],
          [{"id": "m", "error": {"code": "METHOD_NOT_FOUND"}}], codec="msgpack"),
    ]
    return {"handlers": SESSION_HANDLERS, "cases": cases}


def main():
    files = {
        "values.json": values(),
        "requests.json": request_cases(),
        "messages.json": message_cases(),
        "handshakes.json": handshake_cases(),
        "frames.json": frame_cases(),
        "sessions.json": session_cases(),
    }
    for name, data in files.items():
        (HERE / name).write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
        print(f"wrote tests/vectors/{name}: {len(data['cases'])} cases")


if __name__ == "__main__":
    main()
