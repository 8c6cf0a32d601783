#!/usr/bin/env python3
"""text-python: text in Python, the fallback of text-rust (the Rust `text` builtin).

Its outputs must be identical to the Rust side's, so the definitions are exact.

Word statistics (`echo`, `stats`, `wordFrequencies`, `slugify`):

- A *word* is a maximal run of characters `c` for which `c.isalnum()` holds: exactly the
  characters of Unicode general category L* (letters) or N* (numbers). Rust's
  `char::is_alphanumeric` agrees on every letter and number; it also counts the
  combining marks and symbols that have the Other_Alphabetic property (Indic vowel signs,
  Hebrew points, Arabic harakat, circled letters such as "Ⓐ"), which here are separators.
  Both also follow their own Unicode version (Python 3.11: Unicode 14).
- Lowercase is `str.lower()` (full Unicode mapping, final sigma included), as Rust's
  `str::to_lowercase`.

JSON (`jsonFormat`, `jsonValidate`) and regular expressions (`regexFindAll`,
`regexCount`, `regexReplace`) take the Rust side's params and give its results and error
codes (`BAD_JSON` with `line` and `column`, `BAD_PATTERN` with `reason` and `pattern`):
`text_json.py` says how serde_json's numbers, escapes and errors are reproduced, and
`text_regex.py` which subset of the Rust `regex` syntax is translated into `re`.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from itertools import groupby
from typing import Any, Dict, List, Optional, Union

from polyglot_worker import ErrorCode, MethodError, Worker
from polyglot_worker.values import type_name

# The helpers beside this file, also when it is loaded by path rather than run.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import text_json  # noqa: E402
import text_regex  # noqa: E402

worker = Worker("text-python", version="1.1.0", max_concurrency=4)

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


BAD_JSON = "BAD_JSON"
"""`jsonFormat`: the text is not valid JSON (`data.line`, `data.column`, 1-based)."""
BAD_PATTERN = "BAD_PATTERN"
"""A regex this side does not compile (`data.reason`: `syntax` or `unsupported`)."""
JSON_STYLES = ("canonical", "compact", "pretty")

_patterns = text_regex.PatternCache()


def _invalid(method: str, param: str, problem: str) -> MethodError:
    return MethodError(ErrorCode.INVALID_PARAMS, f"{method}: `{param}` {problem}", {"param": param})


def _bytes_or_text(method: str, param: str, value: Any) -> bytes:
    """A required param given as bytes, or as a string (its UTF-8)."""
    if value is None:
        raise _invalid(method, param, "is required")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8")
    raise _invalid(method, param, f"must be bytes or a string, not {type_name(value)}")


def _param_text(method: str, param: str, value: Any) -> str:
    """A required param given as a string, or as bytes that are valid UTF-8."""
    if value is None:
        raise _invalid(method, param, "is required")
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _invalid(method, param, f"is not valid UTF-8 (at byte {exc.start})") from None
    raise _invalid(method, param, f"must be a string, not {type_name(value)}")


def _opt_uint(method: str, param: str, value: Any) -> Optional[int]:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _invalid(method, param, f"must be an integer >= 0, not {type_name(value)}")
    return value


def _pattern(source: str) -> text_regex.Pattern:
    try:
        return _patterns.get(source)
    except text_regex.PatternError as exc:
        raise MethodError(BAD_PATTERN, str(exc), {"reason": exc.reason, "pattern": exc.pattern}) from None


@worker.method("jsonFormat")
def json_format(text: Any = None, style: Any = None) -> str:
    """The JSON document in `text` written again: `canonical` (the default: keys sorted by
    their UTF-8 bytes at every depth, the last of repeated keys kept, numbers and strings
    in one normal form, no whitespace), `compact` (no whitespace) or `pretty` (two-space
    indentation); `compact` and `pretty` change nothing but whitespace."""
    data = _bytes_or_text("jsonFormat", "text", text)
    chosen = "canonical" if style is None else _param_text("jsonFormat", "style", style)
    if chosen not in JSON_STYLES:
        raise _invalid("jsonFormat", "style", f'unknown JSON style {chosen!r}: expected "canonical", "compact" or "pretty"')
    try:
        return text_json.format_document(data, chosen)
    except text_json.JsonError as exc:
        raise MethodError(BAD_JSON, str(exc), {"line": exc.line, "column": exc.column}) from None


@worker.method("jsonValidate")
def json_validate(text: Any = None) -> Dict[str, Any]:
    """`{valid: true}`, or `{valid: false, line, column, message}` at the first error."""
    data = _bytes_or_text("jsonValidate", "text", text)
    try:
        text_json.validate(data)
    except text_json.JsonError as exc:
        return {"valid": False, "line": exc.line, "column": exc.column, "message": exc.message}
    return {"valid": True}


@worker.method("regexFindAll")
def regex_find_all(pattern: Any = None, text: Any = None, limit: Any = None) -> List[Dict[str, Any]]:
    """The non-overlapping matches, the first `limit` when given: `{match, start, end}`
    with UTF-8 byte offsets, and `groups` (from group 1, null for one that did not take
    part) when the pattern has groups."""
    source = _param_text("regexFindAll", "pattern", pattern)
    haystack = _param_text("regexFindAll", "text", text)
    compiled = _pattern(source)
    return compiled.find_all(haystack, _opt_uint("regexFindAll", "limit", limit))


@worker.method("regexCount")
def regex_count(pattern: Any = None, text: Any = None) -> int:
    """How many non-overlapping matches `text` holds."""
    source = _param_text("regexCount", "pattern", pattern)
    haystack = _param_text("regexCount", "text", text)
    return _pattern(source).count(haystack)


@worker.method("regexReplace")
def regex_replace(
    pattern: Any = None, text: Any = None, replacement: Any = None, limit: Any = None, literal: Any = None
) -> str:
    """`text` with the first `limit` matches (all when 0, the default) replaced: `$1`,
    `${name}` name groups and `$$` is a dollar sign, unless `literal`."""
    source = _param_text("regexReplace", "pattern", pattern)
    haystack = _param_text("regexReplace", "text", text)
    compiled = _pattern(source)
    template = _param_text("regexReplace", "replacement", replacement)
    count = _opt_uint("regexReplace", "limit", limit) or 0
    if literal is not None and not isinstance(literal, bool):
        raise _invalid("regexReplace", "literal", f"must be a boolean, not {type_name(literal)}")
    return compiled.replace(haystack, template, count, bool(literal))


if __name__ == "__main__":
    worker.serve()
