"""Framing and the two codecs (docs/protocol.md, sections 3 and 7).

A `Codec` turns one message into a payload and back (`encode`, `decode`) and adds the
framing (`frame`). A `FrameDecoder` splits a byte stream into payloads without doing any
I/O: `feed` it bytes, it returns the events they completed; "need more bytes" is the normal
state, not an error. At end of stream, `finish` tells a clean end from one inside a frame.

An oversize frame is never buffered whole: the decoder keeps its first `HEAD_BYTES` bytes
(to read the `id` from), counts and drops the rest, and yields `TooLarge`.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Union

from .errors import DecodeError, EncodeError, Id, MissingDependency
from .values import INT_MIN, UINT_MAX, check_value, decode_base64, encode_base64, is_bytes_object

JSON = "json"
"""Newline-delimited JSON, the default codec."""

MSGPACK = "msgpack"
"""Length-prefixed MessagePack."""

CODECS = (JSON, MSGPACK)
"""The codec names the protocol knows."""

DEFAULT_MAX_FRAME = 64 * 1024 * 1024
"""The default frame size limit (64 MiB): large enough for real payloads (images, model
inputs), small enough that a runaway writer cannot exhaust the reader's memory."""

HEAD_BYTES = 512
"""How much of an oversize frame is kept to read its `id` from. Writers put `id` first, so
a few hundred bytes hold it even when it is a long string. Same value as the Rust SDK."""

_PREFIX = struct.Struct(">I")
"""The MessagePack frame prefix: a 4-byte big-endian unsigned length."""


# ------------------------------------------------------------------ frame events
@dataclass(frozen=True)
class Frame:
    """A whole frame's payload (for JSON, the line without `\\n` or `\\r\\n`)."""

    payload: bytes


@dataclass(frozen=True)
class TooLarge:
    """A frame over the limit that was skipped. `size` is its size in bytes, `id` its id
    when its first bytes hold one."""

    size: int
    id: Optional[Id]


@dataclass(frozen=True)
class Truncated:
    """The stream ended inside a frame, after `buffered` bytes of it."""

    buffered: int


FrameEvent = Union[Frame, TooLarge]


class FrameDecoder:
    """Splits a byte stream of one codec into frames. See the module docs."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"frame limit must be at least 1 byte, got {limit}")
        self.limit = limit
        self._buf = bytearray()
        # Skipping an oversize frame: its size so far and its first HEAD_BYTES bytes.
        self._skipping = False
        self._skip_size = 0
        self._skip_head = bytearray()

    def feed(self, data: bytes) -> List[FrameEvent]:
        """Takes the next bytes of the stream; returns the frames they completed, in order."""
        raise NotImplementedError

    def finish(self) -> Optional[Truncated]:
        """At end of stream: `None` for a clean end, `Truncated` when a frame was cut off."""
        pending = len(self._buf)
        if self._skipping:
            return Truncated(self._skip_size + pending)
        return Truncated(pending) if pending else None

    def _keep_head(self, data: bytes) -> None:
        room = HEAD_BYTES - len(self._skip_head)
        if room > 0:
            self._skip_head += data[:room]


class JsonFrameDecoder(FrameDecoder):
    """Newline-delimited JSON frames; a `\\r` before the `\\n` is dropped, blank lines are
    skipped (they carry nothing)."""

    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self._scanned = 0  # bytes at the start of _buf known to hold no newline
        self._last_cr = False  # skipping: whether the last byte dropped was "\r"

    def feed(self, data: bytes) -> List[FrameEvent]:
        out: List[FrameEvent] = []
        if self._skipping:
            data = self._continue_skip(data, out)
            if self._skipping:
                return out
        buf = self._buf
        buf += data
        start = 0
        while True:
            nl = buf.find(b"\n", start + self._scanned)
            if nl < 0:
                pending = len(buf) - start
                # One byte of slack: a trailing "\r" is not part of the frame.
                if pending > self.limit + 1:
                    self._skipping = True
                    self._skip_size = pending
                    self._skip_head = bytearray(buf[start : start + HEAD_BYTES])
                    self._last_cr = buf[-1] == 0x0D
                    self._scanned = 0
                    start = len(buf)
                else:
                    self._scanned = pending
                break
            self._scanned = 0
            end = nl - 1 if nl > start and buf[nl - 1] == 0x0D else nl
            size = end - start
            if size > self.limit:
                head = bytes(buf[start : min(end, start + HEAD_BYTES)])
                out.append(TooLarge(size, json_id_from_head(head)))
            elif size > 0:
                out.append(Frame(bytes(buf[start:end])))
            start = nl + 1
        del buf[:start]
        return out

    def _continue_skip(self, data: bytes, out: List[FrameEvent]) -> bytes:
        nl = data.find(b"\n")
        if nl < 0:
            self._keep_head(data)
            self._skip_size += len(data)
            if data:
                self._last_cr = data[-1] == 0x0D
            return b""
        self._keep_head(data[:nl])
        size = self._skip_size + nl
        if (nl > 0 and data[nl - 1] == 0x0D) or (nl == 0 and self._last_cr):
            size -= 1
        out.append(TooLarge(size, json_id_from_head(bytes(self._skip_head))))
        self._skipping = False
        self._skip_head = bytearray()
        return data[nl + 1 :]


class MsgpackFrameDecoder(FrameDecoder):
    """Length-prefixed MessagePack frames."""

    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self._remaining = 0  # bytes of an oversize frame still to drop

    def feed(self, data: bytes) -> List[FrameEvent]:
        out: List[FrameEvent] = []
        while data:
            if self._skipping:
                take = min(self._remaining, len(data))
                self._keep_head(data[:take])
                self._remaining -= take
                data = data[take:]
                if self._remaining:
                    break
                out.append(TooLarge(self._skip_size, msgpack_id_from_head(bytes(self._skip_head))))
                self._skipping = False
                self._skip_head = bytearray()
                continue
            buf = self._buf
            buf += data
            data = b""
            start = 0
            while len(buf) - start >= _PREFIX.size:
                (n,) = _PREFIX.unpack_from(buf, start)
                body = start + _PREFIX.size
                if n > self.limit:
                    # Drop it without buffering: what is already here goes back through
                    # the skipping branch above.
                    self._skipping = True
                    self._skip_size = self._remaining = n
                    self._skip_head = bytearray()
                    data = bytes(buf[body:])
                    start = len(buf)
                    break
                if len(buf) - body < n:
                    break
                out.append(Frame(bytes(buf[body : body + n])))
                start = body + n
            del buf[:start]
        return out

    def finish(self) -> Optional[Truncated]:
        if self._skipping:
            return Truncated(self._skip_size - self._remaining)
        pending = len(self._buf)
        return Truncated(pending) if pending else None


# ------------------------------------------------------------------ reading an id early
def json_id_from_head(head: bytes) -> Optional[Id]:
    """Reads the `id` from the first bytes of a JSON frame, if the frame starts with it (as
    every writer of this protocol does): `{"id": <integer or string>, ...`."""
    i = 0
    n = len(head)

    def skip_ws(i: int) -> int:
        while i < n and head[i] in b" \t\r\n":
            i += 1
        return i

    i = skip_ws(i)
    if head[i : i + 1] != b"{":
        return None
    i = skip_ws(i + 1)
    if head[i : i + 4] != b'"id"':
        return None
    i = skip_ws(i + 4)
    if head[i : i + 1] != b":":
        return None
    i = skip_ws(i + 1)
    start = i
    if head[i : i + 1] == b'"':
        i += 1
        while i < n:
            c = head[i]
            if c == 0x5C:  # backslash: skip the escaped character
                i += 2
            elif c == 0x22:  # closing quote
                try:
                    value = json.loads(head[start : i + 1].decode("utf-8"))
                except ValueError:
                    return None
                return value if isinstance(value, str) else None
            else:
                i += 1
        return None
    while i < n and (head[i] == 0x2D or 0x30 <= head[i] <= 0x39):
        i += 1
    # The number must end inside the head, or it may have been cut.
    if i >= n or head[i] not in b",} \t\r\n" or i == start:
        return None
    try:
        value = json.loads(head[start:i].decode("ascii"))
    except ValueError:
        return None
    if isinstance(value, int) and INT_MIN <= value <= UINT_MAX:
        return value
    return None


def msgpack_id_from_head(head: bytes) -> Optional[Id]:
    """Reads the `id` from the first bytes of a MessagePack frame, if the frame is a map
    whose first key is `id` holding an integer or a string. Needs no `msgpack` package."""
    try:
        return _msgpack_id(head)
    except (IndexError, struct.error, UnicodeDecodeError):
        return None


def _msgpack_id(head: bytes) -> Optional[Id]:
    b0 = head[0]
    if 0x81 <= b0 <= 0x8F:
        i = 1
    elif b0 == 0xDE:
        if struct.unpack_from(">H", head, 1)[0] == 0:
            return None
        i = 3
    elif b0 == 0xDF:
        if struct.unpack_from(">I", head, 1)[0] == 0:
            return None
        i = 5
    else:
        return None
    key, i = _msgpack_str(head, i)
    if key != "id":
        return None
    t = head[i]
    if t <= 0x7F:
        return t
    if t >= 0xE0:
        return t - 0x100
    ints = {0xCC: ">B", 0xCD: ">H", 0xCE: ">I", 0xCF: ">Q", 0xD0: ">b", 0xD1: ">h", 0xD2: ">i", 0xD3: ">q"}
    if t in ints:
        return int(struct.unpack_from(ints[t], head, i + 1)[0])
    try:
        value, _ = _msgpack_str(head, i)
    except ValueError:
        return None
    return value


def _msgpack_str(head: bytes, i: int) -> "tuple[str, int]":
    t = head[i]
    if 0xA0 <= t <= 0xBF:
        n, i = t - 0xA0, i + 1
    elif t == 0xD9:
        n, i = head[i + 1], i + 2
    elif t == 0xDA:
        n, i = struct.unpack_from(">H", head, i + 1)[0], i + 3
    elif t == 0xDB:
        n, i = struct.unpack_from(">I", head, i + 1)[0], i + 5
    else:
        raise ValueError("not a string")
    if i + n > len(head):
        raise IndexError("string cut off")
    return head[i : i + n].decode("utf-8"), i + n


# ------------------------------------------------------------------ codecs
class Codec:
    """One of the protocol's codecs. Use `get_codec` to get one by name."""

    name: str = ""

    def encode(self, value: Any) -> bytes:
        """The payload holding `value` (without framing). Raises `EncodeError` when the
        value is outside the protocol's data model."""
        raise NotImplementedError

    def decode(self, payload: bytes) -> Any:
        """The value in one frame's payload. Raises `DecodeError`."""
        raise NotImplementedError

    def frame(self, payload: bytes) -> bytes:
        """The bytes that carry `payload` on the wire."""
        raise NotImplementedError

    def frame_decoder(self, limit: int = DEFAULT_MAX_FRAME) -> FrameDecoder:
        """A new decoder that splits a stream of this codec's frames."""
        raise NotImplementedError

    def id_from_head(self, head: bytes) -> Optional[Id]:
        """The `id` at the start of a payload, if readable (for frames that do not decode)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{self.name} codec>"


def _json_int(text: str) -> int:
    value = int(text)
    if not INT_MIN <= value <= UINT_MAX:
        raise DecodeError(f"integer {text} is outside the 64-bit range")
    return value


def _json_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise DecodeError(f"number {text} is out of range")
    return value


def _json_constant(name: str) -> Any:
    raise DecodeError(f"{name} is not JSON")


def _json_object(obj: Dict[str, Any]) -> Any:
    if is_bytes_object(obj):
        return decode_base64(obj["$bytes"])
    return obj


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return {"$bytes": encode_base64(obj)}
    raise TypeError(f"a {type(obj).__name__} is not a protocol value")


_JSON_ENCODER = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=_json_default
)


class JsonCodec(Codec):
    """Newline-delimited UTF-8 JSON; binary as `{"$bytes": "<base64>"}`."""

    name = JSON

    def encode(self, value: Any) -> bytes:
        check_value(value)
        try:
            return _JSON_ENCODER.encode(value).encode("utf-8")
        except (UnicodeEncodeError, ValueError, TypeError) as exc:
            raise EncodeError(f"cannot encode as JSON: {exc}") from None

    def decode(self, payload: bytes) -> Any:
        try:
            text = bytes(payload).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DecodeError(f"frame is not valid JSON: not UTF-8 ({exc})") from None
        try:
            return json.loads(
                text,
                object_hook=_json_object,
                parse_int=_json_int,
                parse_float=_json_float,
                parse_constant=_json_constant,
            )
        except DecodeError as exc:
            raise DecodeError(f"frame is not valid JSON: {exc}") from None
        except (ValueError, RecursionError) as exc:
            raise DecodeError(f"frame is not valid JSON: {exc}") from None

    def frame(self, payload: bytes) -> bytes:
        return payload + b"\n"

    def frame_decoder(self, limit: int = DEFAULT_MAX_FRAME) -> FrameDecoder:
        return JsonFrameDecoder(limit)

    def id_from_head(self, head: bytes) -> Optional[Id]:
        return json_id_from_head(head[:HEAD_BYTES])


def _load_msgpack() -> Any:
    try:
        import msgpack  # type: ignore[import-untyped,unused-ignore]
    except ImportError:
        raise MissingDependency(
            "the msgpack codec needs the 'msgpack' package, which is not installed: "
            "pip install msgpack (or pip install 'polyglot-worker[msgpack]')"
        ) from None
    return msgpack


def _msgpack_object(obj: Dict[Any, Any]) -> Dict[Any, Any]:
    for key in obj:
        if not isinstance(key, str):
            raise DecodeError(f"map key {key!r} is not a string")
    return obj


def _msgpack_ext(code: int, data: bytes) -> Any:
    raise DecodeError(f"MessagePack extension type {code} is not a protocol value")


class MsgpackCodec(Codec):
    """Length-prefixed MessagePack; binary as `bin`. Needs the `msgpack` package."""

    name = MSGPACK

    def __init__(self) -> None:
        self._msgpack = _load_msgpack()

    def encode(self, value: Any) -> bytes:
        check_value(value)
        try:
            payload: bytes = self._msgpack.packb(value, use_bin_type=True)
            return payload
        except (UnicodeEncodeError, ValueError, TypeError, OverflowError) as exc:
            raise EncodeError(f"cannot encode as MessagePack: {exc}") from None

    def decode(self, payload: bytes) -> Any:
        try:
            return self._msgpack.unpackb(
                payload,
                raw=False,
                use_list=True,
                strict_map_key=True,
                object_hook=_msgpack_object,
                ext_hook=_msgpack_ext,
            )
        except Exception as exc:  # msgpack raises many types for malformed input
            raise DecodeError(f"frame is not valid MessagePack: {exc}") from None

    def frame(self, payload: bytes) -> bytes:
        if len(payload) > 0xFFFFFFFF:
            raise EncodeError(f"a MessagePack frame holds at most 4 GiB, not {len(payload)} bytes")
        return _PREFIX.pack(len(payload)) + payload

    def frame_decoder(self, limit: int = DEFAULT_MAX_FRAME) -> FrameDecoder:
        return MsgpackFrameDecoder(limit)

    def id_from_head(self, head: bytes) -> Optional[Id]:
        return msgpack_id_from_head(head[:HEAD_BYTES])


def get_codec(name: str) -> Codec:
    """The codec called `name` (`"json"` or `"msgpack"`).

    Raises `ValueError` for an unknown name, and `MissingDependency` (an `ImportError`)
    for `"msgpack"` when the `msgpack` package is not installed.
    """
    if name == JSON:
        return JsonCodec()
    if name == MSGPACK:
        return MsgpackCodec()
    raise ValueError(f"unknown codec {name!r}; the protocol knows {', '.join(CODECS)}")


def frame_decoder(codec: str, limit: int = DEFAULT_MAX_FRAME) -> FrameDecoder:
    """A frame decoder for the codec called `codec`; needs no `msgpack` package."""
    if codec == JSON:
        return JsonFrameDecoder(limit)
    if codec == MSGPACK:
        return MsgpackFrameDecoder(limit)
    raise ValueError(f"unknown codec {codec!r}; the protocol knows {', '.join(CODECS)}")
