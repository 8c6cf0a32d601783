"""The bundled module polyglot-modules/text-python: exact outputs, which text-rust must
match byte for byte."""

from __future__ import annotations

import importlib.util
from types import ModuleType
from typing import Any

import pytest

from conftest import REPO
from polyglot_worker import MethodError
from polyglot_worker.testing import run_session


def load_module() -> ModuleType:
    path = REPO / "polyglot-modules" / "text-python" / "worker.py"
    spec = importlib.util.spec_from_file_location("text_python_worker", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tp = load_module()


@pytest.mark.parametrize(
    "text, expected",
    [
        ("", {"bytes": 0, "chars": 0, "words": 0, "lines": 0}),
        ("\n", {"bytes": 1, "chars": 1, "words": 0, "lines": 1}),
        ("a\n", {"bytes": 2, "chars": 2, "words": 1, "lines": 1}),
        ("a\n\nb", {"bytes": 4, "chars": 4, "words": 2, "lines": 3}),
        ("héllo wörld\nx", {"bytes": 15, "chars": 13, "words": 3, "lines": 2}),
        ("日本語 テキスト🌍", {"bytes": 26, "chars": 9, "words": 2, "lines": 1}),
        ("don't stop-2-go_now", {"bytes": 19, "chars": 19, "words": 6, "lines": 1}),
        ("x\r\ny", {"bytes": 4, "chars": 4, "words": 2, "lines": 2}),
    ],
)
def test_stats(text: str, expected: dict) -> None:
    assert tp.stats(text) == expected


@pytest.mark.parametrize(
    "args, expected",
    [
        (("The the THE cat. Cat dog", 2), [["the", 3], ["cat", 2]]),
        (("b a c a b",), [["a", 2], ["b", 2], ["c", 1]]),
        (("é z É", 10), [["é", 2], ["z", 1]]),
        (("é z", 10), [["z", 1], ["é", 1]]),  # ties in code point order, not locale order
        (("ΣΟΦΟΣ σοφος", 10), [["σοφος", 2]]),  # final sigma
        (("Straße STRASSE", 10), [["strasse", 1], ["straße", 1]]),
        (("a b c", 0), []),
        (("", 5), []),
    ],
)
def test_word_frequencies(args: tuple, expected: list) -> None:
    assert tp.word_frequencies(*args) == expected


def test_word_frequencies_default_top_is_10() -> None:
    text = " ".join(f"w{i:02d}" for i in range(15))
    assert tp.word_frequencies(text) == [[f"w{i:02d}", 1] for i in range(10)]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("  Hello, World!  ", "hello-world"),
        ("Ünïcödé — Straße 42", "ünïcödé-straße-42"),
        ("a--b__c", "a-b-c"),
        ("---", ""),
        ("", ""),
        ("日本語のテキスト", "日本語のテキスト"),
        ("İstanbul", "i-stanbul"),  # lower() gives "i" + U+0307 (a mark, not alphanumeric)
    ],
)
def test_slugify(text: str, expected: str) -> None:
    assert tp.slugify(text) == expected


@pytest.mark.parametrize("value", [None, 5, "text", [1, {"a": b"\x00"}], {"k": [True, 1.5]}])
def test_echo(value: Any) -> None:
    assert tp.echo(value) == value


@pytest.mark.parametrize("call", [
    lambda: tp.stats(5),
    lambda: tp.word_frequencies(["x"]),
    lambda: tp.slugify(None),
])
def test_non_string_text_is_invalid_params(call: Any) -> None:
    with pytest.raises(MethodError) as err:
        call()
    assert err.value.code == "INVALID_PARAMS"
    assert "expects a string" in err.value.message


@pytest.mark.parametrize("top", [-1, True, "3", 1.0, None])
def test_bad_top_is_invalid_params(top: Any) -> None:
    with pytest.raises(MethodError) as err:
        tp.word_frequencies("a", top)
    assert err.value.code == "INVALID_PARAMS"


def test_served_methods_and_params() -> None:
    assert tp.worker.methods == [
        "echo",
        "jsonFormat",
        "jsonValidate",
        "regexCount",
        "regexFindAll",
        "regexReplace",
        "slugify",
        "stats",
        "wordFrequencies",
    ]
    session = run_session(tp.worker, [
        {"id": 1, "method": "wordFrequencies", "params": {"text": "b a b"}},
        {"id": 2, "method": "wordFrequencies", "params": ["b a b", 1]},
        {"id": 3, "method": "echo", "params": [[1, 2]]},
        {"id": 4, "method": "stats", "params": [1, 2]},
    ])
    r = session.responses
    assert r[1]["result"] == [["b", 2], ["a", 1]]
    assert r[2]["result"] == [["b", 2]]
    assert r[3]["result"] == [1, 2]
    assert r[4]["error"]["code"] == "INVALID_PARAMS"
