"""The native functions against known answers: BLAKE3's official vectors, the GCM
specification's AES-256 cases, zstd round trips and bombs; every bytes-like input; and
the GIL released while they work."""

from __future__ import annotations

import array
import json
import threading
import time

import pytest

import polyglot
from conftest import REPO

VECTORS = REPO / "crates" / "polyglot-native" / "tests" / "vectors"


def blake3_cases():
    data = json.loads((VECTORS / "blake3.json").read_text())
    return data, data["cases"]


def filled(n: int) -> bytes:
    return bytes(i % 251 for i in range(n))


def test_blake3_of_abc_is_the_known_digest():
    expected = "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85"
    assert polyglot.blake3(b"abc").hex() == expected
    assert polyglot.blake3_hex(b"abc") == expected
    assert isinstance(polyglot.blake3(b"abc"), bytes)


def test_blake3_matches_the_official_vectors_in_every_mode():
    data, cases = blake3_cases()
    key = data["key"].encode()
    context = data["context_string"]
    for case in cases:
        inp = filled(case["input_len"])
        for mode, kwargs in (("hash", {}), ("keyed_hash", {"key": key}),
                             ("derive_key", {"context": context})):
            want = case[mode]
            assert polyglot.blake3_hex(inp, **kwargs) == want[:64], (mode, case["input_len"])
            n = len(want) // 2
            assert polyglot.blake3(inp, length=n, **kwargs).hex() == want, mode


def test_blake3_refuses_bad_arguments_with_value_errors():
    with pytest.raises(polyglot.InvalidArgument, match="32 bytes"):
        polyglot.blake3(b"x", key=b"short")
    with pytest.raises(ValueError, match="exclusive"):
        polyglot.blake3(b"x", key=bytes(32), context="c")
    for bad in (0, -1, (1 << 20) + 1, 1 << 70):
        with pytest.raises((ValueError, OverflowError)):
            polyglot.blake3(b"x", length=bad)
    with pytest.raises(TypeError, match="not 'str'"):
        polyglot.blake3("text")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="'int'"):
        polyglot.blake3(5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        polyglot.blake3(None)  # type: ignore[arg-type]


def test_every_bytes_like_input_gives_the_same_digest():
    raw = filled(300_000)  # past the parallel threshold
    want = polyglot.blake3(raw)
    inputs = [
        bytearray(raw),
        memoryview(raw),
        memoryview(bytearray(raw)),
        memoryview(b"xx" + raw + b"yy")[2:-2],  # a view inside a bytes object
        array.array("B", raw),
    ]
    for inp in inputs:
        assert polyglot.blake3(inp) == want, type(inp)
    # Non-contiguous and wider-item buffers are read as their bytes in C order.
    stepped = memoryview(raw)[::2]
    assert polyglot.blake3(stepped) == polyglot.blake3(bytes(stepped))
    words = array.array("I", [1, 2, 3])
    assert polyglot.blake3(words) == polyglot.blake3(words.tobytes())
    assert polyglot.compress(bytearray(raw)) and polyglot.encrypt(memoryview(raw), bytearray(32))


def test_aes_gcm_matches_the_specification_cases():
    cases = json.loads((VECTORS / "aes_gcm.json").read_text())["cases"]
    # The sealed format carries a 96-bit nonce; cases 17 and 18 use other IV lengths.
    cases = [c for c in cases if len(c["iv"]) == 24]
    assert len(cases) == 4
    for c in cases:
        key = bytes.fromhex(c["key"])
        message = bytes.fromhex(c["iv"] + c["ciphertext"] + c["tag"])
        aad = bytes.fromhex(c["aad"])
        assert polyglot.decrypt(message, key, aad).hex() == c["plaintext"], c["name"]


def test_aes_round_trip_and_format():
    key = bytes(range(32))
    for size in (0, 1, 15, 16, 17, 1000, 1 << 20):
        plain = filled(size)
        sealed = polyglot.encrypt(plain, key, aad=b"header")
        assert len(sealed) == size + 28
        assert polyglot.decrypt(sealed, key, aad=b"header") == plain
    # A fresh nonce every time.
    assert polyglot.encrypt(b"same", key) != polyglot.encrypt(b"same", key)


def test_any_tampering_fails_authentication():
    key = bytes(range(32))
    sealed = polyglot.encrypt(b"attack at dawn", key, b"aad")
    for i in range(len(sealed)):
        bad = bytearray(sealed)
        bad[i] ^= 0x01
        with pytest.raises(polyglot.AuthenticationFailed):
            polyglot.decrypt(bytes(bad), key, b"aad")
    with pytest.raises(polyglot.AuthenticationFailed):
        polyglot.decrypt(sealed, key, b"other aad")
    with pytest.raises(polyglot.AuthenticationFailed):
        polyglot.decrypt(sealed, bytes(32), b"aad")
    with pytest.raises(polyglot.AuthenticationFailed):
        polyglot.decrypt(sealed + b"x", key, b"aad")
    with pytest.raises(polyglot.InvalidArgument, match="28 bytes"):
        polyglot.decrypt(sealed[:20], key)
    with pytest.raises(polyglot.InvalidArgument, match="32 bytes"):
        polyglot.encrypt(b"x", bytes(16))
    err = pytest.raises(polyglot.AuthenticationFailed, polyglot.decrypt, sealed, key).value
    assert isinstance(err, polyglot.PolyglotError) and err.kind == "authentication_failed"


def test_zstd_round_trip_at_several_levels():
    text = b"".join(b"line %d of a log file, with some repetition\n" % i for i in range(50_000))
    for level in (-5, 1, 3, 19):
        packed = polyglot.compress(text, level)
        assert len(packed) < len(text) // 5
        assert polyglot.decompress(packed) == text
    assert polyglot.decompress(polyglot.compress(b"")) == b""
    with pytest.raises(polyglot.InvalidArgument):
        polyglot.compress(b"x", 99)


def test_a_decompression_bomb_is_refused():
    zeros = polyglot.compress(bytes(50 << 20))  # 50 MiB of zeros in a few KiB
    assert len(zeros) < 64 << 10
    with pytest.raises(polyglot.TooLarge, match="over the limit"):
        polyglot.decompress(zeros, max_size=1 << 20)
    # Frames without one declared size (two frames back to back) are bounded too.
    two = polyglot.compress(bytes(1 << 20)) + polyglot.compress(bytes(1 << 20))
    assert polyglot.decompress(two) == bytes(2 << 20)
    with pytest.raises(polyglot.TooLarge):
        polyglot.decompress(two, max_size=(1 << 20) + 10)
    with pytest.raises(polyglot.InvalidArgument):
        polyglot.decompress(zeros, max_size=-1)


def test_corrupt_input_is_corrupt_data():
    with pytest.raises(polyglot.CorruptData):
        polyglot.decompress(b"")
    with pytest.raises(polyglot.CorruptData):
        polyglot.decompress(b"definitely not zstd")
    packed = bytearray(polyglot.compress(filled(100_000)))
    packed[len(packed) // 2] ^= 0xFF
    with pytest.raises(polyglot.CorruptData):
        polyglot.decompress(bytes(packed))


def test_the_gil_is_released_while_native_functions_work():
    data = filled(1 << 20) * 24  # 24 MiB: zstd takes tens of milliseconds
    done = threading.Event()
    spins = 0

    def work():
        for _ in range(3):
            polyglot.compress(data, 3)
        done.set()

    t = threading.Thread(target=work)
    t.start()
    time.sleep(0.005)  # let the worker thread enter the first compress
    while not done.is_set():
        spins += 1
    t.join()
    # Held GIL: this loop would only run in the gaps between the calls. Released: it
    # runs the whole time, millions of iterations.
    assert spins > 100_000, spins
