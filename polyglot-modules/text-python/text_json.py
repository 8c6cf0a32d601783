"""JSON for text-python's `jsonFormat` and `jsonValidate`, giving byte for byte the
outputs of the Rust `text` builtin, which accepts what serde_json 1.0 accepts (with its
`float_roundtrip` feature, without `arbitrary_precision`) and writes a document in one of
three styles: `compact` and `pretty` change only whitespace (key order, repeated keys,
the text of numbers and escapes stay as written), `canonical` sorts keys and writes
numbers and strings in serde_json's normal form.

What has to match, and how it is matched:

- **Which documents are valid.** serde_json refuses what Python's `json` takes: `NaN`,
  `Infinity`, lone UTF-16 surrogates in `\\u` escapes, numbers past the `f64` range
  (`1e400`), and nesting of 128 levels or more. A document is parsed by `json.loads`
  (fast, in C) with hooks that refuse those; anything `json.loads` or a hook refuses is
  parsed again by `_Parser`, a port of serde_json's parser, which finds the same error
  at the same place or, for what only Python refused (a BOM, deep nesting that is still
  under the limit, text that is not UTF-8 outside strings), reads the document.
- **Numbers.** serde_json keeps integers that fit `u64` (or `i64` when negative) and
  reads every other number as the correctly rounded `f64` of all its digits (its
  `float_roundtrip` feature), as Python's `float()` does; a number past the `f64` range
  is an error, and an exponent past `i32` is zero or out of range without looking at
  the digits. `-0` is `-0.0`.
- **Writing numbers.** serde_json writes an `f64` with the shortest digits that read back
  as the same double (as Python's `repr`), but in its own layout: plain decimals when the
  decimal exponent is -5 to 15 (`100.0`, `0.00001`), otherwise `1e+16`, `1.5e-7`.
  `_format_float` lays out `repr`'s digits that way.
- **Keys** are sorted by their UTF-8 bytes, which is Python's code point order; of
  repeated keys the last value is kept (both). Strings are written with the same escapes
  (`\\"`, `\\\\`, `\\b \\f \\n \\r \\t`, other controls as `\\u00XX` in lowercase hex,
  everything else as UTF-8): `json.dumps(..., ensure_ascii=False)` does exactly that.
- **Errors** carry serde_json's message (`expected value`, `trailing comma`, ...) and its
  1-based line and column (in bytes), with the Rust side's one adjustment: an error found
  at a line break is reported at the end of the line it ends.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from typing import Any, List, Optional, Tuple

MAX_DEPTH = 128
"""serde_json's recursion limit: a document nested this deep or deeper is refused
("recursion limit exceeded"); 127 levels are read."""

_U64_MAX = 2**64 - 1
_I32_MAX = 2**31 - 1
_I32_MIN = -(2**31)


class JsonError(Exception):
    """Not valid JSON: serde_json's message, and the 1-based line and column (bytes)."""

    def __init__(self, message: str, line: int, column: int) -> None:
        super().__init__(f"invalid JSON at line {line}, column {column}: {message}")
        self.message = message
        self.line = line
        self.column = column


class _Refused(Exception):
    """Raised by a `json.loads` hook: serde_json would refuse this document."""


class _OutOfRange(Exception):
    """A number past the range of `f64`."""


# ---------------------------------------------------------------- numbers
def _f64_of(text: str) -> float:
    """The correctly rounded double of the JSON number `text`, as serde_json with
    `float_roundtrip` reads it; past the `f64` range it is out of range."""
    f = float(text)
    if math.isinf(f):
        raise _OutOfRange
    return f


def _number(text: str) -> Any:
    """The value serde_json reads from the JSON number `text` (already known to be one)."""
    i = 0
    positive = text[0] != "-"
    if not positive:
        i = 1
    n = len(text)
    significand = 0
    exponent = 0
    # Integer digits: kept while they fit u64; past that, each one only counts.
    while i < n and "0" <= text[i] <= "9":
        d = ord(text[i]) - 48
        if significand * 10 + d > _U64_MAX:
            while i < n and "0" <= text[i] <= "9":
                exponent += 1
                i += 1
            break
        significand = significand * 10 + d
        i += 1
    else:
        if i == n:  # an integer that fits
            if positive:
                return significand
            if 0 < significand <= 2**63:
                return -significand
            return -float(significand)
    if i < n and text[i] == ".":
        i += 1
        while i < n and "0" <= text[i] <= "9":
            d = ord(text[i]) - 48
            if significand * 10 + d > _U64_MAX:
                # Further fraction digits are dropped.
                while i < n and "0" <= text[i] <= "9":
                    i += 1
                break
            significand = significand * 10 + d
            exponent -= 1
            i += 1
    if i < n and text[i] in "eE":
        i += 1
        positive_exp = True
        if text[i] in "+-":
            positive_exp = text[i] == "+"
            i += 1
        e = 0
        while i < n:
            d = ord(text[i]) - 48
            if e * 10 + d > _I32_MAX:
                if significand != 0 and positive_exp:
                    raise _OutOfRange
                return 0.0 if positive else -0.0
            e = e * 10 + d
            i += 1
        exponent = exponent + e if positive_exp else exponent - e
    return _f64_of(text)


def _format_float(f: float) -> str:
    """A double as serde_json writes it: the shortest digits that read back as `f` (those
    of `repr`), plain from 1e-5 to below 1e16, otherwise `d.ddde±x`."""
    if f == 0.0:
        return "-0.0" if math.copysign(1.0, f) < 0 else "0.0"
    text = repr(f)
    sign = ""
    if text[0] == "-":
        sign, text = "-", text[1:]
    mantissa, _, exp_text = text.partition("e")
    exp = int(exp_text) if exp_text else 0
    whole, _, fraction = mantissa.partition(".")
    digits = (whole + fraction).lstrip("0")
    exp -= len(fraction)
    trimmed = digits.rstrip("0")
    exp += len(digits) - len(trimmed)
    digits = trimmed
    n = len(digits)
    point = exp + n - 1  # the decimal exponent of the first digit
    if -5 <= point <= 15:
        if n - 1 <= point:
            return f"{sign}{digits}{'0' * (point - n + 1)}.0"
        if point >= 0:
            return f"{sign}{digits[: point + 1]}.{digits[point + 1 :]}"
        return f"{sign}0.{'0' * (-point - 1)}{digits}"
    rest = f".{digits[1:]}" if n > 1 else ""
    return f"{sign}{digits[0]}{rest}e{'+' if point >= 0 else '-'}{abs(point)}"


# A string token, or a float token (one with a point or an exponent) as `json.dumps`
# writes them; integers are left alone.
_TOKENS = re.compile(r'("[^"\\]*(?:\\.[^"\\]*)*")|(-?\d+(?:\.\d+)?(?:e[-+]?\d+)?)')


def _fix_floats(text: str) -> str:
    def replace(m: "re.Match[str]") -> str:
        number = m.group(2)
        if number is None or ("." not in number and "e" not in number):
            return m.group(0)
        return _format_float(float(number))

    return _TOKENS.sub(replace, text)


# ---------------------------------------------------------------- reading
class _Reader:
    """One document read by `json.loads`, with serde_json's rules as hooks."""

    def __init__(self) -> None:
        self.saw_float = False

    def number(self, text: str) -> Any:
        try:
            value = _number(text)
        except _OutOfRange:
            raise _Refused from None
        if isinstance(value, float):
            self.saw_float = True
        return value

    @staticmethod
    def constant(name: str) -> Any:
        raise _Refused  # NaN, Infinity, -Infinity


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _fast(data: bytes) -> Optional[Tuple[Any, bool]]:
    """The document and whether it holds floats, when `json.loads` with serde_json's
    rules reads it; `None` when `_Parser` must decide."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    reader = _Reader()
    try:
        value = json.loads(text, parse_float=reader.number, parse_int=reader.number, parse_constant=reader.constant)
    except (ValueError, _Refused, RecursionError):
        return None
    deep = text.count("[") + text.count("{") >= MAX_DEPTH and _max_depth(text) >= MAX_DEPTH
    if (deep or _SURROGATE_ESCAPE.search(text)) and not _within_rules(value):
        return None
    return value, reader.saw_float


_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")


def _max_depth(text: str) -> int:
    """The deepest nesting of a document `json.loads` read, counted at C speed: its
    brackets outside strings as +1 and -1 steps, summed."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text)).encode("ascii")
    return max(itertools.accumulate(memoryview(brackets.translate(_STEPS)).cast("b")), default=0)


def _within_rules(value: Any) -> bool:
    """Whether a document `json.loads` read stays under the depth limit and holds no lone
    surrogate (which only a `\\u` escape can have put there)."""
    stack: List[Tuple[Any, int]] = [(value, 0)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, str):
            if _SURROGATE.search(v):
                return False
        elif isinstance(v, (list, dict)):
            if depth + 1 >= MAX_DEPTH:
                return False
            if isinstance(v, dict):
                for k, item in v.items():
                    if _SURROGATE.search(k):
                        return False
                    stack.append((item, depth + 1))
            else:
                stack.extend((item, depth + 1) for item in v)
    return True


def parse(data: bytes) -> Tuple[Any, bool]:
    """The document in `data` and whether it holds floats.

    Raises `JsonError` for anything serde_json refuses, with its message and position."""
    fast = _fast(data)
    if fast is not None:
        return fast
    parser = _Parser(data)
    value = parser.document()
    return value, parser.saw_float


def format_document(data: bytes, style: str) -> str:
    """`data` written again in `style`: `canonical` (keys sorted, the last of repeated keys
    kept, numbers and strings in serde_json's normal form, no whitespace), `compact` (no
    whitespace, everything else as written) or `pretty` (two-space indentation, everything
    else as written).

    Raises `JsonError` when `data` is not valid JSON."""
    if style != "canonical":
        validate(data)
        return _layout(data, pretty=style == "pretty").decode("utf-8")
    value, saw_float = parse(data)
    out = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return _fix_floats(out) if saw_float else out


# The tokens of a valid document: strings (escapes and all), punctuation, and the runs
# of anything else (numbers, literals); whitespace is what lies between.
_RAW_TOKENS = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[{}\[\],:]|[^\s"{}\[\],:]+')
_INDENT = b"  "


def _layout(data: bytes, pretty: bool) -> bytes:
    """The tokens of a valid document, unchanged, with new whitespace: none, or serde_json's
    pretty layout (one value or member per line, `"key": value`, empty containers as `[]`
    and `{}`)."""
    tokens = _RAW_TOKENS.findall(data)
    if not pretty:
        return b"".join(tokens)
    out: List[bytes] = []
    # Per open container: [is an object, members so far, a key comes next].
    frames: List[List[Any]] = []
    for tok in tokens:
        if tok == b",":
            if frames[-1][0]:
                frames[-1][2] = True
            continue
        if tok == b":":
            frames[-1][2] = False
            out.append(b": ")
            continue
        if tok in (b"]", b"}"):
            _, count, _ = frames.pop()
            if count:
                out.append(b"\n" + _INDENT * len(frames))
            out.append(tok)
            continue
        if frames and (not frames[-1][0] or frames[-1][2]):
            # The start of an item: an array's value, or an object's key.
            frame = frames[-1]
            if frame[1]:
                out.append(b",")
            out.append(b"\n" + _INDENT * len(frames))
            frame[1] += 1
        out.append(tok)
        if tok == b"{":
            frames.append([True, 0, True])
        elif tok == b"[":
            frames.append([False, 0, False])
    return b"".join(out)


def validate(data: bytes) -> None:
    """Raises `JsonError` when `data` is not one valid JSON document."""
    parse(data)


# ---------------------------------------------------------------- serde_json's parser
_EOF_LIST = "EOF while parsing a list"
_EOF_OBJECT = "EOF while parsing an object"
_EOF_STRING = "EOF while parsing a string"
_EOF_VALUE = "EOF while parsing a value"
_EXPECTED_COLON = "expected `:`"
_EXPECTED_LIST_COMMA_OR_END = "expected `,` or `]`"
_EXPECTED_OBJECT_COMMA_OR_END = "expected `,` or `}`"
_EXPECTED_IDENT = "expected ident"
_EXPECTED_VALUE = "expected value"
_INVALID_ESCAPE = "invalid escape"
_INVALID_NUMBER = "invalid number"
_OUT_OF_RANGE = "number out of range"
_INVALID_CODE_POINT = "invalid unicode code point"
_CONTROL_CHARACTER = "control character (\\u0000-\\u001F) found while parsing a string"
_KEY_MUST_BE_A_STRING = "key must be a string"
_LONE_SURROGATE = "lone leading surrogate in hex escape"
_TRAILING_COMMA = "trailing comma"
_TRAILING_CHARACTERS = "trailing characters"
_END_OF_HEX_ESCAPE = "unexpected end of hex escape"
_RECURSION_LIMIT = "recursion limit exceeded"

_WHITESPACE = b" \n\t\r"
_DIGITS = b"0123456789"
_ESCAPES = {
    ord('"'): '"',
    ord("\\"): "\\",
    ord("/"): "/",
    ord("b"): "\b",
    ord("f"): "\f",
    ord("n"): "\n",
    ord("r"): "\r",
    ord("t"): "\t",
}
_STRING_STOP = re.compile(rb'["\\\x00-\x1f]')


class _Parser:
    """serde_json's recursive-descent parser over bytes (`de.rs` and `read.rs`'s
    `SliceRead`), statement for statement where errors are concerned: the same checks in
    the same order, the same position for each (`error` is the last byte read, `peek_error`
    the next one)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.index = 0
        self.remaining_depth = MAX_DEPTH
        self.saw_float = False
        self.number_start = 0

    # ------------------------------------------------------------ positions
    def _position(self, i: int) -> Tuple[int, int]:
        start_of_line = self.data.rfind(b"\n", 0, i) + 1
        return 1 + self.data.count(b"\n", 0, start_of_line), i - start_of_line

    def _fail(self, message: str, i: int) -> JsonError:
        line, column = self._position(i)
        if column == 0 and line >= 2:
            # Found at a line break: reported at the end of the line it ends.
            previous = self.data.split(b"\n")[line - 2]
            line, column = line - 1, len(previous) + 1
        return JsonError(message, line, column)

    def error(self, message: str) -> JsonError:
        return self._fail(message, self.index)

    def peek_error(self, message: str) -> JsonError:
        return self._fail(message, min(len(self.data), self.index + 1))

    # ------------------------------------------------------------ bytes
    def peek(self) -> Optional[int]:
        return self.data[self.index] if self.index < len(self.data) else None

    def peek_or_null(self) -> int:
        return self.data[self.index] if self.index < len(self.data) else 0

    def next(self) -> Optional[int]:
        if self.index < len(self.data):
            self.index += 1
            return self.data[self.index - 1]
        return None

    def whitespace(self) -> Optional[int]:
        while self.index < len(self.data) and self.data[self.index] in _WHITESPACE:
            self.index += 1
        return self.peek()

    # ------------------------------------------------------------ values
    def document(self) -> Any:
        value = self.value()
        if self.whitespace() is not None:
            raise self.peek_error(_TRAILING_CHARACTERS)
        return value

    def value(self) -> Any:
        peek = self.whitespace()
        if peek is None:
            raise self.peek_error(_EOF_VALUE)
        if peek == ord("n"):
            self.index += 1
            self.ident(b"ull")
            return None
        if peek == ord("t"):
            self.index += 1
            self.ident(b"rue")
            return True
        if peek == ord("f"):
            self.index += 1
            self.ident(b"alse")
            return False
        if peek == ord("-"):
            self.index += 1
            return self.integer(False)
        if peek in _DIGITS:
            return self.integer(True)
        if peek == ord('"'):
            self.index += 1
            return self.string()
        if peek == ord("["):
            self.enter()
            self.index += 1
            items = self.seq()
            self.remaining_depth += 1
            self.end_seq()
            return items
        if peek == ord("{"):
            self.enter()
            self.index += 1
            entries = self.map()
            self.remaining_depth += 1
            self.end_map()
            return entries
        raise self.peek_error(_EXPECTED_VALUE)

    def enter(self) -> None:
        self.remaining_depth -= 1
        if self.remaining_depth == 0:
            raise self.peek_error(_RECURSION_LIMIT)

    def ident(self, rest: bytes) -> None:
        for expected in rest:
            got = self.next()
            if got is None:
                raise self.error(_EOF_VALUE)
            if got != expected:
                raise self.error(_EXPECTED_IDENT)

    def seq(self) -> List[Any]:
        items: List[Any] = []
        first = True
        while True:
            peek = self.whitespace()
            if peek is None:
                raise self.peek_error(_EOF_LIST)
            if peek == ord("]"):
                return items
            if first:
                first = False
            elif peek == ord(","):
                self.index += 1
                after = self.whitespace()
                if after == ord("]"):
                    raise self.peek_error(_TRAILING_COMMA)
                if after is None:
                    raise self.peek_error(_EOF_VALUE)
            else:
                raise self.peek_error(_EXPECTED_LIST_COMMA_OR_END)
            items.append(self.value())

    def end_seq(self) -> None:
        peek = self.whitespace()
        if peek == ord("]"):
            self.index += 1
            return
        if peek == ord(","):
            self.index += 1
            if self.whitespace() == ord("]"):
                raise self.peek_error(_TRAILING_COMMA)
            raise self.peek_error(_TRAILING_CHARACTERS)
        if peek is None:
            raise self.peek_error(_EOF_LIST)
        raise self.peek_error(_TRAILING_CHARACTERS)

    def map(self) -> dict:
        entries: dict = {}
        first = True
        while True:
            peek = self.whitespace()
            if peek is None:
                raise self.peek_error(_EOF_OBJECT)
            if peek == ord("}"):
                return entries
            if first:
                first = False
                if peek != ord('"'):
                    raise self.peek_error(_KEY_MUST_BE_A_STRING)
            elif peek == ord(","):
                self.index += 1
                after = self.whitespace()
                if after == ord("}"):
                    raise self.peek_error(_TRAILING_COMMA)
                if after is None:
                    raise self.peek_error(_EOF_VALUE)
                if after != ord('"'):
                    raise self.peek_error(_KEY_MUST_BE_A_STRING)
            else:
                raise self.peek_error(_EXPECTED_OBJECT_COMMA_OR_END)
            self.index += 1  # the key's opening quote
            key = self.string()
            colon = self.whitespace()
            if colon is None:
                raise self.peek_error(_EOF_OBJECT)
            if colon != ord(":"):
                raise self.peek_error(_EXPECTED_COLON)
            self.index += 1
            entries[key] = self.value()

    def end_map(self) -> None:
        peek = self.whitespace()
        if peek == ord("}"):
            self.index += 1
            return
        if peek == ord(","):
            raise self.peek_error(_TRAILING_COMMA)
        if peek is None:
            raise self.peek_error(_EOF_OBJECT)
        raise self.peek_error(_TRAILING_CHARACTERS)

    # ------------------------------------------------------------ numbers
    def integer(self, positive: bool) -> Any:
        # Where the number's text starts (its sign included): a float is read from it.
        self.number_start = self.index - (0 if positive else 1)
        first = self.next()
        if first is None:
            raise self.error(_EOF_VALUE)
        if first == ord("0"):
            if self.peek_or_null() in _DIGITS:
                raise self.peek_error(_INVALID_NUMBER)
            return self.number(positive, 0)
        if not ord("1") <= first <= ord("9"):
            raise self.error(_INVALID_NUMBER)
        significand = first - 48
        while True:
            c = self.peek_or_null()
            if c not in _DIGITS:
                return self.number(positive, significand)
            digit = c - 48
            if significand * 10 + digit > _U64_MAX:
                return self.float(self.long_integer(positive, significand))
            self.index += 1
            significand = significand * 10 + digit

    def float(self, value: float) -> float:
        self.saw_float = True
        return value

    def number(self, positive: bool, significand: int) -> Any:
        c = self.peek_or_null()
        if c == ord("."):
            return self.float(self.decimal(positive, significand, 0))
        if c in b"eE":
            return self.float(self.exponent(positive, significand, 0))
        if positive:
            return significand
        if 0 < significand <= 2**63:
            return -significand
        return self.float(-float(significand))

    def decimal(self, positive: bool, significand: int, exponent_before: int) -> float:
        self.index += 1  # the point
        exponent_after = 0
        while self.peek_or_null() in _DIGITS:
            digit = self.data[self.index] - 48
            if significand * 10 + digit > _U64_MAX:
                return self.decimal_overflow(positive, significand, exponent_before + exponent_after)
            self.index += 1
            significand = significand * 10 + digit
            exponent_after -= 1
        if exponent_after == 0:
            if self.peek() is not None:
                raise self.peek_error(_INVALID_NUMBER)
            raise self.peek_error(_EOF_VALUE)
        exponent = exponent_before + exponent_after
        if self.peek_or_null() in b"eE":
            return self.exponent(positive, significand, exponent)
        return self.from_parts(positive, significand, exponent)

    def decimal_overflow(self, positive: bool, significand: int, exponent: int) -> float:
        while self.peek_or_null() in _DIGITS:
            self.index += 1
        if self.peek_or_null() in b"eE":
            return self.exponent(positive, significand, exponent)
        return self.from_parts(positive, significand, exponent)

    def exponent(self, positive: bool, significand: int, starting: int) -> float:
        self.index += 1  # the e
        positive_exp = True
        c = self.peek_or_null()
        if c == ord("+"):
            self.index += 1
        elif c == ord("-"):
            self.index += 1
            positive_exp = False
        first = self.next()
        if first is None:
            raise self.error(_EOF_VALUE)
        if first not in _DIGITS:
            raise self.error(_INVALID_NUMBER)
        exp = first - 48
        while self.peek_or_null() in _DIGITS:
            digit = self.data[self.index] - 48
            self.index += 1
            if exp * 10 + digit > _I32_MAX:
                if significand != 0 and positive_exp:
                    raise self.error(_OUT_OF_RANGE)
                while self.peek_or_null() in _DIGITS:
                    self.index += 1
                return 0.0 if positive else -0.0
            exp = exp * 10 + digit
        final = starting + exp if positive_exp else starting - exp
        return self.from_parts(positive, significand, max(_I32_MIN, min(_I32_MAX, final)))

    def long_integer(self, positive: bool, significand: int) -> float:
        exponent = 0
        while True:
            c = self.peek_or_null()
            if c in _DIGITS:
                self.index += 1
                exponent += 1
            elif c == ord("."):
                return self.decimal(positive, significand, exponent)
            elif c in b"eE":
                return self.exponent(positive, significand, exponent)
            else:
                return self.from_parts(positive, significand, exponent)

    def from_parts(self, positive: bool, significand: int, exponent: int) -> float:
        """The float that ends here, read from its text: the parts only tell it is one."""
        del positive, significand, exponent
        try:
            return _f64_of(self.data[self.number_start : self.index].decode("ascii"))
        except _OutOfRange:
            raise self.error(_OUT_OF_RANGE) from None

    # ------------------------------------------------------------ strings
    def string(self) -> str:
        """The string after its opening quote, through its closing quote."""
        data = self.data
        start = self.index
        scratch: Optional[bytearray] = None
        while True:
            m = _STRING_STOP.search(data, self.index)
            if m is None:
                self.index = len(data)
                raise self.error(_EOF_STRING)
            self.index = m.start()
            c = data[self.index]
            if c == ord('"'):
                if scratch is None:
                    raw = data[start : self.index]
                else:
                    scratch += data[start : self.index]
                    raw = bytes(scratch)
                self.index += 1
                try:
                    return raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    # Pointed at from the closing quote, as serde_json does (so after an
                    # escape the column is approximate there too).
                    line, column = self._position(self.index)
                    column = max(0, column - (len(raw) - exc.start))
                    if column == 0 and line >= 2:
                        previous = data.split(b"\n")[line - 2]
                        line, column = line - 1, len(previous) + 1
                    raise JsonError(_INVALID_CODE_POINT, line, column) from None
            if c == ord("\\"):
                if scratch is None:
                    scratch = bytearray()
                scratch += data[start : self.index]
                self.index += 1
                self.escape(scratch)
                start = self.index
            else:
                self.index += 1
                raise self.error(_CONTROL_CHARACTER)

    def escape(self, scratch: bytearray) -> None:
        c = self.next()
        if c is None:
            raise self.error(_EOF_STRING)
        simple = _ESCAPES.get(c)
        if simple is not None:
            scratch += simple.encode("ascii")
            return
        if c != ord("u"):
            raise self.error(_INVALID_ESCAPE)
        n = self.hex_escape()
        if 0xDC00 <= n <= 0xDFFF:
            raise self.error(_LONE_SURROGATE)
        if not 0xD800 <= n <= 0xDBFF:
            scratch += chr(n).encode("utf-8")
            return
        # A leading surrogate: a trailing one must follow as another \u escape.
        if self.peek() is None:
            raise self.error(_EOF_STRING)
        self.index += 1
        if self.data[self.index - 1] != ord("\\"):
            raise self.error(_END_OF_HEX_ESCAPE)
        if self.peek() is None:
            raise self.error(_EOF_STRING)
        self.index += 1
        if self.data[self.index - 1] != ord("u"):
            raise self.error(_END_OF_HEX_ESCAPE)
        n2 = self.hex_escape()
        if not 0xDC00 <= n2 <= 0xDFFF:
            raise self.error(_LONE_SURROGATE)
        scratch += chr(0x10000 + ((n - 0xD800) << 10) + (n2 - 0xDC00)).encode("utf-8")

    def hex_escape(self) -> int:
        if self.index + 4 > len(self.data):
            self.index = len(self.data)
            raise self.error(_EOF_STRING)
        digits = self.data[self.index : self.index + 4]
        self.index += 4
        if not all(d in b"0123456789abcdefABCDEF" for d in digits):
            raise self.error(_INVALID_ESCAPE)
        return int(digits, 16)
