"""Protocol values in Python, and their JSON form (docs/protocol.md, section 7).

In Python a protocol value is `None`, `bool`, `int` (signed or unsigned 64-bit), `float`
(finite), `str`, `bytes` (binary; `bytearray` and `memoryview` are accepted when sending),
`list` (or `tuple` when sending), or `dict` with `str` keys.

On the JSON wire, binary is the object `{"$bytes": "<standard base64, padded>"}`; the
"JSON form" of a value is the value with every `bytes` written that way (the form the test
vectors use). `to_json_form` and `from_json_form` convert between the two.
"""

from __future__ import annotations

import base64
import binascii
import math
from typing import Any, Dict

from .errors import DecodeError, EncodeError

BYTES_KEY = "$bytes"
"""The single key of the JSON form of binary data."""

INT_MIN = -(2**63)
"""The smallest integer the protocol carries (signed 64-bit)."""

UINT_MAX = 2**64 - 1
"""The largest integer the protocol carries (unsigned 64-bit)."""

_BINARY_TYPES = (bytes, bytearray, memoryview)


def type_name(value: Any) -> str:
    """The protocol's name for the type of `value`, for error messages.

    >>> type_name(3), type_name(b"x"), type_name({"a": 1})
    ('integer', 'binary', 'object')
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, _BINARY_TYPES):
        return "binary"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def decode_base64(text: Any) -> bytes:
    """Decodes the value of a `$bytes` key: standard base64 (RFC 4648) with padding.

    Non-canonical encodings (non-zero unused bits before the padding) are refused too, as
    Rust's `base64` crate does, so every SDK accepts the same strings.

    Raises `DecodeError` naming `$bytes` when `text` is not such a string.
    """
    if not isinstance(text, str):
        raise DecodeError(f"invalid {BYTES_KEY}: expected a base64 string, got {type_name(text)}")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise DecodeError(f"invalid {BYTES_KEY}: not valid base64 ({exc})") from None
    if base64.b64encode(data).decode("ascii") != text:
        raise DecodeError(f"invalid {BYTES_KEY}: not canonical padded base64")
    return data


def encode_base64(data: Any) -> str:
    """The standard padded base64 text of `data` (bytes, bytearray or memoryview)."""
    return base64.b64encode(bytes(data)).decode("ascii")


def is_bytes_object(obj: Dict[str, Any]) -> bool:
    """Whether a decoded JSON object is the JSON form of binary (exactly one key, `$bytes`)."""
    return len(obj) == 1 and BYTES_KEY in obj


def from_json_form(value: Any) -> Any:
    """Converts a JSON-form value (as `json.loads` gives it) into a protocol value: every
    `{"$bytes": ...}` object becomes `bytes`.

    Raises `DecodeError` for a `$bytes` object whose value is not valid base64.

    >>> from_json_form({"blob": {"$bytes": "aGk="}, "n": [1]})
    {'blob': b'hi', 'n': [1]}
    """
    if isinstance(value, dict):
        if is_bytes_object(value):
            return decode_base64(value[BYTES_KEY])
        return {k: from_json_form(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_json_form(v) for v in value]
    return value


def to_json_form(value: Any) -> Any:
    """Converts a protocol value into its JSON form: `bytes` become `{"$bytes": ...}`.

    >>> to_json_form([b"hi", {"a": b""}])
    [{'$bytes': 'aGk='}, {'a': {'$bytes': ''}}]
    """
    if isinstance(value, _BINARY_TYPES):
        return {BYTES_KEY: encode_base64(value)}
    if isinstance(value, dict):
        return {k: to_json_form(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json_form(v) for v in value]
    return value


def check_value(value: Any) -> None:
    """Checks that `value` is inside the protocol's data model, so that both codecs can
    send it and a host in any language can read it.

    Refused: integers outside the 64-bit range, NaN and infinities, non-`str` map keys,
    and any other type. The JSON codec would otherwise write what the host cannot read
    (and MessagePack would fail or keep integer keys), so the SDK checks before either.

    Raises `EncodeError` whose message gives the path of the offending value.
    """
    try:
        _check(value, "$")
    except RecursionError:
        raise EncodeError("value is nested too deeply to send") from None


def _check(value: Any, path: str) -> None:
    t = type(value)
    if value is None or t is str or t is bool or t is bytes:
        return
    if t is int or (isinstance(value, int) and not isinstance(value, bool)):
        if not INT_MIN <= value <= UINT_MAX:
            raise EncodeError(f"{path}: integer {value} is outside the 64-bit range")
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise EncodeError(f"{path}: {value} is not a JSON number")
        return
    if isinstance(value, (str, bool, bytearray, memoryview, bytes)):
        return
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise EncodeError(
                    f"{path}: map key {k!r} is a {type(k).__name__}; protocol map keys are strings"
                )
            _check(v, f"{path}.{k}")
        return
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check(v, f"{path}[{i}]")
        return
    raise EncodeError(f"{path}: a {t.__name__} is not a protocol value")
