#!/usr/bin/env python3
"""compress-python: zstd in Python, the fallback of compress-rust.

The same methods, params, results and error codes as the Rust `compress` builtin
(crates/polyglot-native/README.md), on `zstandard`, which bundles the same libzstd
(1.5.7) as the Rust side:

- `compress(data, level = 3)`: one zstd frame that records the content size and carries a
  content checksum, written with the same parameters as the Rust side, so the same input
  and level give the same bytes while both link the same libzstd.
- `decompress(data, maxSize = 256 MiB)`: one or more frames, never producing more than
  `maxSize` bytes. A frame that declares a larger size is refused before any work;
  frames that declare none, or several frames, are decoded in bounded reads. A
  decompression bomb is a `TOO_LARGE` error; anything that is not whole zstd frames is
  `CORRUPT_DATA`.

Params are named or positional (in the order above), or the first param alone.
"""

from __future__ import annotations

import io
import struct
from typing import Any, Optional

import zstandard

from polyglot_worker import ErrorCode, MethodError, Worker
from polyglot_worker.values import type_name

worker = Worker("compress-python", version="1.0.0", max_concurrency=4)

TOO_LARGE = "TOO_LARGE"
"""The output would pass `maxSize` (`data.what`, `data.limit`, `data.actual` when the
frame declares its size)."""
CORRUPT_DATA = "CORRUPT_DATA"
"""The input is not whole, valid zstd frames."""

DEFAULT_LEVEL = 3
"""zstd's own default level."""
MIN_LEVEL = -zstandard.TARGETLENGTH_MAX
"""zstd's fastest level, -131072: `ZSTD_minCLevel()` is `-ZSTD_TARGETLENGTH_MAX`."""
MAX_LEVEL = zstandard.MAX_COMPRESSION_LEVEL
"""zstd's strongest level, 22."""
DEFAULT_MAX_SIZE = 256 << 20
"""The decompressed size allowed unless the caller says otherwise: 256 MiB."""
MAX_MAX_SIZE = 4 << 30
"""The largest `maxSize` a caller may set: 4 GiB."""
READ_CHUNK = 1 << 20
"""How much a bounded decode asks for at once: large enough that the read loop costs
nothing next to decoding, small enough that a limit is never passed by much work."""

_ZSTD_MAGIC = 0xFD2FB528
_SKIPPABLE_MAGIC_MASK = 0xFFFFFFF0
_SKIPPABLE_MAGIC = 0x184D2A50
_CHECKSUM_LEN = 4
_BLOCK_HEADER_LEN = 3
_RLE_BLOCK = 1
_RESERVED_BLOCK = 3


def _invalid(method: str, param: str, problem: str) -> MethodError:
    return MethodError(ErrorCode.INVALID_PARAMS, f"{method}: `{param}` {problem}", {"param": param})


def _corrupt(what: str) -> MethodError:
    return MethodError(CORRUPT_DATA, f"compressed data is not valid zstd: {what}")


def _too_large(limit: int, actual: Optional[int]) -> MethodError:
    data = {"what": "decompressed data", "limit": limit}
    message = f"decompressed data is over the limit of {limit} bytes"
    if actual is not None:
        data["actual"] = actual
        message += f" ({actual} bytes)"
    return MethodError(TOO_LARGE, message, data)


# ---------------------------------------------------------------- methods
@worker.method
def compress(data: Any = None, level: Any = None) -> bytes:
    """`data` as one zstd frame with its content size and a content checksum."""
    if data is None:
        raise _invalid("compress", "data", "is required")
    if isinstance(data, str):
        raw = data.encode("utf-8")
    elif isinstance(data, (bytes, bytearray, memoryview)):
        raw = bytes(data)
    else:
        raise _invalid("compress", "data", f"must be bytes or a string, not {type_name(data)}")
    if level is None:
        level = DEFAULT_LEVEL
    elif isinstance(level, bool) or not isinstance(level, int):
        raise _invalid("compress", "level", f"must be an integer, not {type_name(level)}")
    if not MIN_LEVEL <= level <= MAX_LEVEL:
        raise MethodError(
            ErrorCode.INVALID_PARAMS,
            f"invalid `level`: must be between {MIN_LEVEL} and {MAX_LEVEL}, got {level}",
            {"param": "level"},
        )
    cctx = zstandard.ZstdCompressor(level=level, write_checksum=True, write_content_size=True)
    return cctx.compress(raw)


@worker.method
def decompress(data: Any = None, maxSize: Any = None) -> bytes:
    """The content of one or more zstd frames, at most `maxSize` bytes."""
    if data is None:
        raise _invalid("decompress", "data", "is required")
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise _invalid(
            "decompress", "data", f'must be bytes (in JSON, {{"$bytes": "<base64>"}}), not {type_name(data)}'
        )
    packed = bytes(data)
    if maxSize is None:
        limit = DEFAULT_MAX_SIZE
    elif isinstance(maxSize, bool) or not isinstance(maxSize, int) or maxSize < 0:
        raise _invalid("decompress", "maxSize", f"must be an integer >= 0, not {type_name(maxSize)}")
    else:
        limit = maxSize
    if limit > MAX_MAX_SIZE:
        raise _invalid("decompress", "maxSize", f"must be at most {MAX_MAX_SIZE} bytes, got {limit}")
    return _decompress(packed, limit)


# ---------------------------------------------------------------- decoding
def _decompress(data: bytes, limit: int) -> bytes:
    if not data:
        raise _corrupt("the input is empty; a zstd frame is at least 9 bytes")
    try:
        size = zstandard.frame_content_size(data)
    except zstandard.ZstdError:
        raise _corrupt("the input does not start with a zstd frame") from None
    if size >= 0:
        if size > limit:
            raise _too_large(limit, size)
        if _frame_length(data, 0) == len(data):
            # One frame of known size: decoded in one call into a buffer of that size;
            # its content size and checksum refuse output that does not match its header.
            try:
                return zstandard.ZstdDecompressor().decompress(data)
            except zstandard.ZstdError as exc:
                raise _corrupt(str(exc)) from None
    return _decompress_bounded(data, limit)


def _decompress_bounded(data: bytes, limit: int) -> bytes:
    """Decodes frame after frame in bounded reads, and stops as soon as the output passes
    `limit`: a bomb costs at most the limit in memory. One byte past the limit is enough
    to know it is passed."""
    reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data), read_across_frames=True)
    out = bytearray()
    try:
        while True:
            chunk = reader.read(min(READ_CHUNK, limit + 1 - len(out)))
            if not chunk:
                break
            out += chunk
            if len(out) > limit:
                raise _too_large(limit, None)
    except zstandard.ZstdError as exc:
        raise _corrupt(str(exc)) from None
    # The reader ends quietly where its input ends, even inside a frame: check that the
    # input is whole frames.
    offset = 0
    while offset < len(data):
        length = _frame_length(data, offset)
        if length is None:
            raise _corrupt("the input ends inside a zstd frame")
        offset += length
    return bytes(out)


def _frame_length(data: bytes, offset: int) -> Optional[int]:
    """The length of the frame at `offset` (zstd's `ZSTD_findFrameCompressedSize`), or
    `None` when the input ends inside it. Walks the frame header, the block headers and
    the checksum (RFC 8878, section 3.1), without decoding anything."""
    if len(data) - offset < 8:
        return None
    (magic,) = struct.unpack_from("<I", data, offset)
    if magic & _SKIPPABLE_MAGIC_MASK == _SKIPPABLE_MAGIC:
        (size,) = struct.unpack_from("<I", data, offset + 4)
        end = offset + 8 + size
        return end - offset if end <= len(data) else None
    if magic != _ZSTD_MAGIC:
        raise _corrupt("unknown frame descriptor")
    try:
        pos = offset + zstandard.frame_header_size(data[offset : offset + 18])
    except zstandard.ZstdError:
        return None
    has_checksum = bool(data[offset + 4] & 0x04)
    while True:
        if pos + _BLOCK_HEADER_LEN > len(data):
            return None
        header = data[pos] | data[pos + 1] << 8 | data[pos + 2] << 16
        last, kind, size = header & 1, (header >> 1) & 3, header >> 3
        if kind == _RESERVED_BLOCK:
            raise _corrupt("a block of the reserved type")
        pos += _BLOCK_HEADER_LEN + (1 if kind == _RLE_BLOCK else size)
        if last:
            break
    if has_checksum:
        pos += _CHECKSUM_LEN
    return pos - offset if pos <= len(data) else None


if __name__ == "__main__":
    worker.serve()
