#!/usr/bin/env python3
"""text-python: text statistics in pure Python, the fallback of text-rust.

Its outputs must be identical to text-rust's, so the definitions are exact:

- A *word* is a maximal run of characters `c` for which `c.isalnum()` holds: exactly the
  characters of Unicode general category L* (letters) or N* (numbers). Rust's
  `char::is_alphanumeric` agrees on every letter and number; it also counts the
  combining marks and symbols that have the Other_Alphabetic property (Indic vowel signs,
  Hebrew points, Arabic harakat, circled letters such as "Ⓐ"), which here are separators.
  Both also follow their own Unicode version (Python 3.11: Unicode 14).
- Lowercase is `str.lower()` (full Unicode mapping, final sigma included), as Rust's
  `str::to_lowercase`.
"""

from __future__ import annotations

from collections import Counter
from itertools import groupby
from typing import Any, Dict, List, Union

from polyglot_worker import ErrorCode, MethodError, Worker
from polyglot_worker.values import type_name

worker = Worker("text-python", version="1.0.0", max_concurrency=4)

DEFAULT_TOP = 10
"""How many entries `wordFrequencies` returns unless asked: a screenful."""


def _text(method: str, text: Any) -> str:
    if not isinstance(text, str):
        raise MethodError(
            ErrorCode.INVALID_PARAMS, f"{method} expects a string, got {type_name(text)}"
        )
    return text


def _runs(text: str) -> List[str]:
    """The maximal runs of alphanumeric characters of `text`, in order."""
    return ["".join(run) for alnum, run in groupby(text, str.isalnum) if alnum]


@worker.method
def echo(value: Any) -> Any:
    """Returns its one argument unchanged."""
    return value


@worker.method
def stats(text: Any) -> Dict[str, int]:
    """`bytes` (UTF-8), `chars` (code points), `words`, and `lines`: the number of "\\n",
    plus one when the text is not empty and does not end with "\\n"."""
    text = _text("stats", text)
    lines = text.count("\n") + (1 if text and not text.endswith("\n") else 0)
    return {
        "bytes": len(text.encode("utf-8")),
        "chars": len(text),
        "words": len(_runs(text)),
        "lines": lines,
    }


@worker.method("wordFrequencies")
def word_frequencies(text: Any, top: Any = DEFAULT_TOP) -> List[List[Union[str, int]]]:
    """`[word, count]` pairs of the lowercased words, most frequent first, ties by word
    (code point order); at most `top` of them."""
    text = _text("wordFrequencies", text)
    if not isinstance(top, int) or isinstance(top, bool) or top < 0:
        raise MethodError(
            ErrorCode.INVALID_PARAMS, f"wordFrequencies expects top to be an integer >= 0, got {top!r}"
        )
    counts = Counter(word.lower() for word in _runs(text))
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [[word, count] for word, count in ranked[:top]]


@worker.method
def slugify(text: Any) -> str:
    """The text lowercased, then every maximal run of non-alphanumeric characters made one
    "-", with none at either end."""
    return "-".join(_runs(_text("slugify", text).lower()))


if __name__ == "__main__":
    worker.serve()
