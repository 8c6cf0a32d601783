#!/usr/bin/env python3
"""crypto-python: BLAKE3, AES-256-GCM and Argon2id in Python, the fallback of crypto-rust.

The same methods, params, results and error codes as the Rust `crypto` builtin
(crates/polyglot-native/README.md), on the packages of requirements.txt:

- `blake3(data, key?, context?, length = 32, raw = false)`: BLAKE3 (`blake3`), plain,
  keyed (`key`, 32 bytes) or derive-key (`context`) mode, 1 byte to 1 MiB of output, as
  lowercase hex or as bytes with `raw`.
- `encrypt(data, key, aad?)`: AES-256-GCM (`cryptography`) into the sealed-message format
  `nonce(12) || ciphertext || tag(16)`, a fresh random nonce for every message.
- `decrypt(data, key, aad?)`: the plaintext of a sealed message; any wrong key, wrong
  `aad` or altered byte fails with `AUTHENTICATION_FAILED`.
- `deriveKey(password, salt?, length = 32, memoryKib = 19456, iterations = 2,
  parallelism = 1)`: Argon2id version 0x13 (`argon2-cffi`'s low-level `hash_secret_raw`,
  the reference implementation), so keys equal the Rust side's for the same settings.

Params are named or positional (in the order above), or the first param alone. Keys and
salts must be bytes: a string is refused, so hex or base64 text is never taken as the key.
"""

from __future__ import annotations

import secrets
from typing import Any, Dict, Optional

import blake3 as _blake3
from argon2.low_level import Type, hash_secret_raw
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from polyglot_worker import ErrorCode, MethodError, Worker
from polyglot_worker.values import type_name

worker = Worker("crypto-python", version="1.0.0", max_concurrency=4)

AUTHENTICATION_FAILED = "AUTHENTICATION_FAILED"
"""`decrypt` failed: wrong key, wrong associated data, or an altered message."""
TOO_LARGE = "TOO_LARGE"
"""An output over a limit (`data.what`, `data.limit`, `data.actual`)."""

KEY_LEN = 32
"""AES-256 and BLAKE3 keys: 32 bytes."""
NONCE_LEN = 12
"""GCM's native 96-bit nonce, at the start of a sealed message."""
TAG_LEN = 16
"""GCM's full 128-bit tag, at the end of a sealed message."""
OVERHEAD = NONCE_LEN + TAG_LEN
"""What a sealed message adds to its plaintext."""

DEFAULT_HASH_LENGTH = 32
"""BLAKE3's standard output length."""
MAX_HASH_LENGTH = 1 << 20
"""The longest `blake3` output: 1 MiB. Longer output is a keystream, not a hash."""
BLAKE3_PARALLEL_THRESHOLD = 256 * 1024
"""Inputs from this size are hashed on every core, as the Rust side does."""

SALT_LEN = 16
"""The salt generated when none is given: 16 random bytes, as RFC 9106 recommends."""
MIN_SALT_LEN = 8
"""Argon2's shortest salt."""
DEFAULT_MEMORY_KIB = 19456
"""The defaults are OWASP's first recommended Argon2id setting: 19 MiB, 2 passes, 1 lane,
a 32-byte key (the Rust side's `KdfParams::default()`)."""
DEFAULT_ITERATIONS = 2
DEFAULT_PARALLELISM = 1
DEFAULT_KEY_LENGTH = 32
MAX_MEMORY_KIB = 1 << 20
"""1 GiB: far above any recommended setting, low enough that one call cannot take the
machine."""
MAX_ITERATIONS = 64
"""Enough for any sane cost, few enough that one call cannot hold a core for minutes."""
MAX_PARALLELISM = 64
"""More lanes than any machine this runs on has cores."""
MIN_KEY_LENGTH = 16
"""128 bits, below which a key is guessable."""
MAX_KEY_LENGTH = 1024
"""Enough for several keys split from one derivation."""
U32_MAX = 2**32 - 1
"""The Rust side reads the settings as 32-bit integers and refuses larger ones."""
ARGON2_VERSION = 0x13
"""Argon2 version 1.3 (RFC 9106), the only one the Rust side derives with."""


# ---------------------------------------------------------------- params
def _invalid(method: str, param: str, problem: str, **data: Any) -> MethodError:
    return MethodError(ErrorCode.INVALID_PARAMS, f"{method}: `{param}` {problem}", {"param": param, **data})


def _missing(method: str, param: str) -> MethodError:
    return _invalid(method, param, "is required")


def _bytes_or_text(method: str, param: str, value: Any) -> bytes:
    """Bytes, or a string as its UTF-8."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8")
    raise _invalid(method, param, f"must be bytes or a string, not {type_name(value)}")


def _bytes_only(method: str, param: str, value: Any) -> bytes:
    """Bytes only: keys and salts are never read from a string."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise _invalid(method, param, f'must be bytes (in JSON, {{"$bytes": "<base64>"}}), not {type_name(value)}')


def _text(method: str, param: str, value: Any) -> str:
    """A string, or bytes that are valid UTF-8."""
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _invalid(method, param, f"is not valid UTF-8 (at byte {exc.start})") from None
    raise _invalid(method, param, f"must be a string, not {type_name(value)}")


def _uint(method: str, param: str, value: Any, default: int) -> int:
    """An optional integer >= 0 (a boolean is not one)."""
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _invalid(method, param, f"must be an integer >= 0, not {type_name(value)}")
    return value


def _bool(method: str, param: str, value: Any, default: bool) -> bool:
    if value is None:
        return default
    if not isinstance(value, bool):
        raise _invalid(method, param, f"must be a boolean, not {type_name(value)}")
    return value


def _key(key: bytes, expected: int = KEY_LEN) -> bytes:
    if len(key) != expected:
        raise MethodError(
            ErrorCode.INVALID_PARAMS,
            f"`key` must be {expected} bytes, got {len(key)}",
            {"param": "key", "expected": expected, "actual": len(key)},
        )
    return key


def _range(param: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise MethodError(
            ErrorCode.INVALID_PARAMS,
            f"invalid `{param}`: must be between {low} and {high}, got {value}",
            {"param": param},
        )


# ---------------------------------------------------------------- methods
@worker.method("blake3")
def blake3_method(
    data: Any = None, key: Any = None, context: Any = None, length: Any = None, raw: Any = None
) -> Any:
    """The BLAKE3 hash of `data`: lowercase hex, or bytes with `raw`."""
    if data is None:
        raise _missing("blake3", "data")
    message = _bytes_or_text("blake3", "data", data)
    key_bytes = None if key is None else _bytes_only("blake3", "key", key)
    context_text = None if context is None else _text("blake3", "context", context)
    out_len = _uint("blake3", "length", length, DEFAULT_HASH_LENGTH)
    as_bytes = _bool("blake3", "raw", raw, False)
    if out_len == 0:
        raise _invalid("blake3", "length", "must be at least 1")
    if out_len > MAX_HASH_LENGTH:
        raise MethodError(
            TOO_LARGE,
            f"hash length is over the limit of {MAX_HASH_LENGTH} bytes ({out_len} bytes)",
            {"what": "hash length", "limit": MAX_HASH_LENGTH, "actual": out_len},
        )
    if key_bytes is not None and context_text is not None:
        raise _invalid(
            "blake3",
            "context",
            "cannot be combined with `key`: keyed hashing and key derivation are different modes",
        )
    threads = _blake3.blake3.AUTO if len(message) >= BLAKE3_PARALLEL_THRESHOLD else 1
    if key_bytes is not None:
        hasher = _blake3.blake3(message, key=_key(key_bytes), max_threads=threads)
    elif context_text is not None:
        hasher = _blake3.blake3(message, derive_key_context=context_text, max_threads=threads)
    else:
        hasher = _blake3.blake3(message, max_threads=threads)
    digest = hasher.digest(length=out_len)
    return digest if as_bytes else digest.hex()


@worker.method
def encrypt(data: Any = None, key: Any = None, aad: Any = None) -> bytes:
    """Seals `data` into `nonce(12) || ciphertext || tag(16)` under a fresh random nonce."""
    if data is None:
        raise _missing("encrypt", "data")
    plaintext = _bytes_or_text("encrypt", "data", data)
    if key is None:
        raise _missing("encrypt", "key")
    aead = AESGCM(_key(_bytes_only("encrypt", "key", key)))
    associated = b"" if aad is None else _bytes_or_text("encrypt", "aad", aad)
    nonce = secrets.token_bytes(NONCE_LEN)
    return nonce + aead.encrypt(nonce, plaintext, associated)


@worker.method
def decrypt(data: Any = None, key: Any = None, aad: Any = None) -> bytes:
    """Opens a message sealed by `encrypt` under the same key and `aad`."""
    if data is None:
        raise _missing("decrypt", "data")
    message = _bytes_only("decrypt", "data", data)
    if key is None:
        raise _missing("decrypt", "key")
    aead = AESGCM(_key(_bytes_only("decrypt", "key", key)))
    associated = b"" if aad is None else _bytes_or_text("decrypt", "aad", aad)
    if len(message) < OVERHEAD:
        raise MethodError(
            ErrorCode.INVALID_PARAMS,
            f"`data` is {len(message)} bytes, shorter than the {OVERHEAD} bytes of an "
            "encrypted message's nonce and tag",
            {"param": "data", "minimum": OVERHEAD, "actual": len(message)},
        )
    try:
        return aead.decrypt(message[:NONCE_LEN], message[NONCE_LEN:], associated)
    except InvalidTag:
        raise MethodError(
            AUTHENTICATION_FAILED,
            "authentication failed: wrong key, wrong associated data, or the message was altered",
        ) from None


@worker.method("deriveKey")
def derive_key(
    password: Any = None,
    salt: Any = None,
    length: Any = None,
    memoryKib: Any = None,
    iterations: Any = None,
    parallelism: Any = None,
) -> Dict[str, Any]:
    """A key derived from `password` with Argon2id, and the settings to derive it again."""
    if password is None:
        raise _missing("deriveKey", "password")
    secret = _bytes_or_text("deriveKey", "password", password)
    given_salt: Optional[bytes] = None if salt is None else _bytes_only("deriveKey", "salt", salt)
    settings = {}
    for name, value, default in (
        ("memoryKib", memoryKib, DEFAULT_MEMORY_KIB),
        ("iterations", iterations, DEFAULT_ITERATIONS),
        ("parallelism", parallelism, DEFAULT_PARALLELISM),
        ("length", length, DEFAULT_KEY_LENGTH),
    ):
        n = _uint("deriveKey", name, value, default)
        if n > U32_MAX:
            raise _invalid("deriveKey", name, f"{n} is out of range")
        settings[name] = n
    lanes = settings["parallelism"]
    _range("parallelism", lanes, 1, MAX_PARALLELISM)
    _range("memoryKib", settings["memoryKib"], 8 * lanes, MAX_MEMORY_KIB)
    _range("iterations", settings["iterations"], 1, MAX_ITERATIONS)
    _range("length", settings["length"], MIN_KEY_LENGTH, MAX_KEY_LENGTH)
    if given_salt is not None and len(given_salt) < MIN_SALT_LEN:
        raise MethodError(
            ErrorCode.INVALID_PARAMS,
            f"invalid `salt`: must be at least {MIN_SALT_LEN} bytes, got {len(given_salt)}",
            {"param": "salt"},
        )
    used_salt = given_salt if given_salt is not None else secrets.token_bytes(SALT_LEN)
    key = hash_secret_raw(
        secret,
        used_salt,
        time_cost=settings["iterations"],
        memory_cost=settings["memoryKib"],
        parallelism=lanes,
        hash_len=settings["length"],
        type=Type.ID,
        version=ARGON2_VERSION,
    )
    return {
        "key": key,
        "salt": used_salt,
        "algorithm": "argon2id",
        "version": ARGON2_VERSION,
        "memoryKib": settings["memoryKib"],
        "iterations": settings["iterations"],
        "parallelism": lanes,
    }


if __name__ == "__main__":
    worker.serve()
