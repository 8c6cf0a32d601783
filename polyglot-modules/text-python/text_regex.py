"""Regular expressions for text-python's `regexFindAll`, `regexCount` and
`regexReplace`: patterns in the syntax of Rust's `regex` crate (what the Rust `text`
builtin takes), translated into Python's `re`, with the Rust crate's results.

# The supported subset

Patterns are read as the Rust crate reads them, and each construct is either translated
into `re` with the same meaning, or refused with `BAD_PATTERN`:

- **Taken as in Rust**: literals and escaped punctuation (`\\.`, `\\-`, `\\#`, `\\ `, ...);
  `.`; `^ $ \\A \\z` (Rust's `$` is the end of the text, never before a final newline:
  it becomes `\\Z`); `\\b \\B`; alternation; greedy and lazy `* + ? {n} {n,} {n,m}`
  (spaces allowed inside the braces, as Rust allows) and stacked ones (`a**`, `a{2}{3}`,
  which `re` reads as possessive or refuses); groups `( )`, `(?: )`, named
  `(?P<name> )` and `(?<name> )`; flags `i m s x U` (and `u`, already on) as `(?flags)`
  or `(?flags: )`; character classes with ranges, negation, escapes, `\\d \\w \\s` and
  their negations, and ASCII classes `[[:alpha:]]`, `[[:^digit:]]` ...; escapes
  `\\n \\t \\r \\f \\v \\a`, `\\x41`, `\\x{1F600}`, `\\u0041`, `\\u{41}`, `\\U0001F600`.
- **Rust's Unicode classes, exactly**: `\\w` is Rust's (letters, marks, decimal numbers,
  connector punctuation, join controls and the circled letters: not Python's, which
  takes `½` and `²` but no combining marks), `\\s` is Unicode White_Space (not Python's,
  which takes the separators U+001C to U+001F), `\\d` is Nd, and `\\b` is a boundary of
  Rust's `\\w`. They are built from this Python's Unicode database, so they agree with the
  Rust side on every character both Unicode versions assign.
- **Refused, as Rust refuses them** (`reason: "syntax"`): look-around `(?= (?! (?<=
  (?<!`, backreferences `\\1` and `(?P=name)`, atomic groups `(?>`, comments `(?#`,
  `\\Z`, unknown escapes (`\\e \\K \\R \\Q ...`), `[\\b]`, unbalanced groups or
  classes, a quantifier without an operand, bad counts or ranges, repeated or dangling
  flags, repeated group names.
- **Refused though Rust takes them** (`reason: "unsupported"`): Unicode properties
  `\\p{..} \\P{..}`, nested classes and class set operations (`&& -- ~~`), word
  boundaries `\\< \\> \\b{start}` ..., the flags `-u` and `R`, group names that are not
  identifiers (`(?P<a.b>`), and nested unbounded repetitions (`(a+)*`, `(\\w+\\s?)+`,
  `a**`): Rust runs those in linear time, but `re` backtracks and can take exponential
  time on them, so the fallback refuses rather than hang.

Not reproduced: Rust's compiled-size limit (`reason: "too_large"`, 4 MiB: `\\w{100}`),
which this side does not measure, and case-insensitive matching of the few characters
whose case folding differs between the two (both use Unicode simple case folding).

# Results

Matches are found as the Rust crate finds them: leftmost-first (what a backtracking `re`
gives too), non-overlapping, and an empty match right where the previous match ended is
skipped (`re.finditer` reports it). Offsets are UTF-8 byte offsets. A replacement's `$1`,
`${name}` and `$$` are expanded with Rust's rules (`$name` takes the longest run of
letters, digits and `_`; a group that does not exist or did not take part gives the empty
string).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple, Union

MAX_SCALAR = 0x10FFFF
PATTERN_ECHO_CHARS = 200
"""How much of a refused pattern an error repeats (as the Rust side)."""
PATTERN_CACHE_SIZE = 32
"""How many compiled patterns are kept; past this the cache starts over (as the Rust
side)."""

Ranges = List[Tuple[int, int]]


class PatternError(Exception):
    """A pattern refused: `reason` is `syntax` (Rust refuses it too) or `unsupported`
    (outside the subset this side takes)."""

    def __init__(self, pattern: str, reason: str, detail: str) -> None:
        super().__init__(f"bad pattern {pattern[:PATTERN_ECHO_CHARS]!r}: {detail}")
        self.pattern = pattern[:PATTERN_ECHO_CHARS]
        self.reason = reason
        self.detail = detail


# ---------------------------------------------------------------- character sets
def _normalize(ranges: Ranges) -> Ranges:
    out: Ranges = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + 1:
            if hi > out[-1][1]:
                out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return out


def _complement(ranges: Ranges) -> Ranges:
    out: Ranges = []
    next_lo = 0
    for lo, hi in _normalize(ranges):
        if lo > next_lo:
            out.append((next_lo, lo - 1))
        next_lo = hi + 1
    if next_lo <= MAX_SCALAR:
        out.append((next_lo, MAX_SCALAR))
    return out


def _from_predicate(keep: Callable[[int], bool]) -> Ranges:
    out: Ranges = []
    start = None
    for cp in range(MAX_SCALAR + 2):
        inside = cp <= MAX_SCALAR and keep(cp)
        if inside and start is None:
            start = cp
        elif not inside and start is not None:
            out.append((start, cp - 1))
            start = None
    return out


# The symbols with the Other_Alphabetic property (circled and squared Latin letters),
# which Rust's \w takes; every other Other_Alphabetic character is a letter or a mark.
_OTHER_ALPHABETIC_SYMBOLS = [(0x24B6, 0x24E9), (0x1F130, 0x1F149), (0x1F150, 0x1F169), (0x1F170, 0x1F189)]
_JOIN_CONTROLS = [(0x200C, 0x200D)]
_WHITE_SPACE = [
    (0x09, 0x0D), (0x20, 0x20), (0x85, 0x85), (0xA0, 0xA0), (0x1680, 0x1680), (0x2000, 0x200A),
    (0x2028, 0x2029), (0x202F, 0x202F), (0x205F, 0x205F), (0x3000, 0x3000),
]  # fmt: skip
_POSIX: Dict[str, Ranges] = {
    "alnum": [(0x30, 0x39), (0x41, 0x5A), (0x61, 0x7A)],
    "alpha": [(0x41, 0x5A), (0x61, 0x7A)],
    "ascii": [(0x00, 0x7F)],
    "blank": [(0x09, 0x09), (0x20, 0x20)],
    "cntrl": [(0x00, 0x1F), (0x7F, 0x7F)],
    "digit": [(0x30, 0x39)],
    "graph": [(0x21, 0x7E)],
    "lower": [(0x61, 0x7A)],
    "print": [(0x20, 0x7E)],
    "punct": [(0x21, 0x2F), (0x3A, 0x40), (0x5B, 0x60), (0x7B, 0x7E)],
    "space": [(0x09, 0x0D), (0x20, 0x20)],
    "upper": [(0x41, 0x5A)],
    "word": [(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)],
    "xdigit": [(0x30, 0x39), (0x41, 0x46), (0x61, 0x66)],
}

_perl_cache: Dict[str, Ranges] = {}


def _perl_class(letter: str) -> Ranges:
    """`\\d`, `\\s` or `\\w` as Rust defines them (Unicode), as code point ranges; built
    once from Python's Unicode database."""
    if letter not in _perl_cache:
        if letter == "s":
            ranges = _WHITE_SPACE
        elif letter == "d":
            ranges = _from_predicate(lambda cp: unicodedata.category(chr(cp)) == "Nd")
        else:
            # Alphabetic (letters, letter numbers, Other_Alphabetic), marks, decimal
            # numbers, connector punctuation, join controls: Rust's `\w`.
            def word(cp: int) -> bool:
                cat = unicodedata.category(chr(cp))
                return cat[0] in "LM" or cat in ("Nl", "Nd", "Pc")

            ranges = _normalize(_from_predicate(word) + _OTHER_ALPHABETIC_SYMBOLS + _JOIN_CONTROLS)
        _perl_cache[letter] = ranges
    return _perl_cache[letter]


def _char(cp: int) -> str:
    """A code point as an escape `re` reads in a class or outside one."""
    return f"\\u{cp:04x}" if cp <= 0xFFFF else f"\\U{cp:08x}"


def _class_text(ranges: Ranges, negated: bool = False) -> str:
    ranges = _normalize(ranges)
    if not ranges:
        return "(?s:.)" if negated else "(?!)"
    body = "".join(_char(lo) if lo == hi else f"{_char(lo)}-{_char(hi)}" for lo, hi in ranges)
    return f"[{'^' if negated else ''}{body}]"


# ---------------------------------------------------------------- the translator
_FLAG_LETTERS = "imsxUuR"


class _Flags:
    __slots__ = ("i", "m", "s", "x", "U")

    def __init__(self) -> None:
        self.i = self.m = self.s = self.x = self.U = False

    def copy(self) -> "_Flags":
        f = _Flags()
        f.i, f.m, f.s, f.x, f.U = self.i, self.m, self.s, self.x, self.U
        return f


class _Term:
    """A translated piece of pattern: its text; whether it can be repeated; whether it
    holds an unbounded repetition; whether it always matches a given character outside of
    any repetition (which stops a repetition of it from backtracking exponentially)."""

    __slots__ = ("text", "operand", "unbounded", "anchored")

    def __init__(self, text: str, operand: bool = True, unbounded: bool = False, anchored: bool = False) -> None:
        self.text = text
        self.operand = operand
        self.unbounded = unbounded
        self.anchored = anchored


class _Translator:
    """A recursive-descent reader of Rust `regex` syntax that writes `re` syntax."""

    def __init__(self, pattern: str, ascii_text: bool = False) -> None:
        self.src = pattern
        # For texts that are all ASCII, where Rust's `\w \d \s` take the ASCII
        # characters only: smaller, faster patterns.
        self.ascii_text = ascii_text
        self.pos = 0
        self.flags = _Flags()
        self.group_names: List[str] = []

    # ------------------------------------------------------------ errors
    def syntax(self, detail: str) -> PatternError:
        return PatternError(self.src, "syntax", detail)

    def unsupported(self, detail: str) -> PatternError:
        return PatternError(self.src, "unsupported", f"{detail}: outside the syntax this Python fallback takes")

    # ------------------------------------------------------------ reading
    def peek(self, ahead: int = 0) -> Optional[str]:
        i = self.pos + ahead
        return self.src[i] if i < len(self.src) else None

    def at_end(self) -> bool:
        return self.pos >= len(self.src)

    def skip_space(self) -> None:
        """In `x` mode, whitespace and `#` comments are not part of the pattern."""
        if not self.flags.x:
            return
        while self.pos < len(self.src):
            c = self.src[self.pos]
            if _is_white_space(c):
                self.pos += 1
            elif c == "#":
                end = self.src.find("\n", self.pos)
                self.pos = len(self.src) if end < 0 else end + 1
            else:
                return

    # ------------------------------------------------------------ structure
    def translate(self) -> str:
        out = self.alternation(top=True)
        if not self.at_end():
            raise self.syntax("unopened group")
        return out.text

    def alternation(self, top: bool) -> _Term:
        branches: List[_Term] = [self.concat()]
        while self.peek() == "|":
            self.pos += 1
            branches.append(self.concat())
        if not top and self.at_end():
            raise self.syntax("unclosed group")
        return _Term(
            "|".join(b.text for b in branches),
            unbounded=any(b.unbounded for b in branches),
            anchored=all(b.anchored for b in branches),
        )

    def concat(self) -> _Term:
        terms: List[_Term] = []
        while True:
            self.skip_space()
            c = self.peek()
            if c is None or c in "|)":
                break
            if c in "*+?{":
                if not terms or not terms[-1].operand:
                    raise self.syntax("repetition operator missing expression")
                terms[-1] = self.quantified(terms[-1])
            else:
                terms.append(self.atom())
        return _Term(
            "".join(t.text for t in terms),
            unbounded=any(t.unbounded for t in terms),
            anchored=any(t.anchored for t in terms),
        )

    def quantified(self, operand: _Term) -> _Term:
        c = self.src[self.pos]
        self.pos += 1
        if c == "{":
            low, high = self.counted()
            text = f"{{{low}}}" if low == high else f"{{{low},{'' if high is None else high}}}"
            unbounded = high is None
        else:
            text, unbounded = c, c in "*+"
        lazy = False
        if self.peek() == "?":
            self.pos += 1
            lazy = True
        if self.flags.U:
            lazy = not lazy
        if unbounded and operand.unbounded and not operand.anchored:
            raise self.unsupported(
                "a nested unbounded repetition (an unbounded repetition of something that holds "
                "one and no required character, as `(a+)*` or `(\\w+\\s?)+`, on which Python's "
                "backtracking `re` can take exponential time)"
            )
        # Always grouped: `re` reads stacked quantifiers as possessive or refuses them.
        return _Term(f"(?:{operand.text}){text}{'?' if lazy else ''}", unbounded=unbounded or operand.unbounded)

    def counted(self) -> Tuple[int, Optional[int]]:
        """A counted repetition after its `{`: `{n}`, `{n,}`, `{n,m}`, spaces allowed."""

        def spaces() -> None:
            while self.peek() is not None and _is_white_space(self.peek() or ""):
                self.pos += 1

        def number() -> int:
            start = self.pos
            while self.peek() is not None and "0" <= (self.peek() or "") <= "9":
                self.pos += 1
            if start == self.pos:
                raise self.syntax("repetition quantifier expects a valid decimal")
            return int(self.src[start : self.pos])

        spaces()
        low = number()
        spaces()
        high: Optional[int] = low
        if self.peek() == ",":
            self.pos += 1
            spaces()
            if self.peek() == "}":
                high = None
            else:
                high = number()
                spaces()
        if self.peek() != "}":
            raise self.syntax("unclosed counted repetition")
        self.pos += 1
        if high is not None and low > high:
            raise self.syntax("invalid repetition count range, the start must be <= the end")
        if max(low, high or 0) >= 2**32 - 1:
            raise self.syntax("repetition count is too large")
        return low, high

    # ------------------------------------------------------------ atoms
    def atom(self) -> _Term:
        c = self.src[self.pos]
        self.pos += 1
        if c == "(":
            return self.group()
        if c == "[":
            return self.wrap_case(self.char_class())
        if c == ".":
            return _Term("(?s:.)" if self.flags.s else "[^\\n]")
        if c == "^":
            return _Term("(?m:^)" if self.flags.m else "\\A")
        if c == "$":
            return _Term("(?m:$)" if self.flags.m else "\\Z")
        if c == "\\":
            return self.escape()
        return self.literal(ord(c))

    def literal(self, cp: int) -> _Term:
        return self.wrap_case(_char(cp), anchored=True)

    def wrap_case(self, text: str, anchored: bool = False) -> _Term:
        return _Term(f"(?i:{text})" if self.flags.i else text, anchored=anchored)

    def escape(self) -> _Term:
        c = self.peek()
        if c is None:
            raise self.syntax("incomplete escape sequence, reached end of pattern prematurely")
        self.pos += 1
        if c in "dswDSW":
            ranges = self.perl_class(c.lower())
            return _Term(_class_text(ranges, negated=c.isupper()))
        if c == "b":
            if self.peek() == "{":
                raise self.unsupported("a special word boundary (`\\b{...}`)")
            w = self.word_class()
            return _Term(f"(?:(?<={w})(?!{w})|(?<!{w})(?={w}))")
        if c == "B":
            # Not `re`'s own `\B`, which never matches in an empty text.
            w = self.word_class()
            return _Term(f"(?:(?<={w})(?={w})|(?<!{w})(?!{w}))")
        if c == "A":
            return _Term("\\A")
        if c == "z":
            return _Term("\\Z")
        if c in "<>":
            raise self.unsupported(f"a word boundary `\\{c}`")
        if c in "pP":
            raise self.unsupported("a Unicode property class (`\\p{...}`)")
        cp = self.escaped_char(c)
        return self.literal(cp)

    def word_class(self) -> str:
        return _class_text(self.perl_class("w"))

    def perl_class(self, letter: str) -> Ranges:
        if self.ascii_text:
            return _POSIX["word" if letter == "w" else "digit" if letter == "d" else "space"]
        return _perl_class(letter)

    def escaped_char(self, c: str) -> int:
        """The character an escape that stands for one character names (after the `\\`)."""
        simple = {"n": 0x0A, "t": 0x09, "r": 0x0D, "f": 0x0C, "v": 0x0B, "a": 0x07}
        if c in simple:
            return simple[c]
        if c in "xuU":
            return self.hex_escape(c)
        if c.isascii() and not c.isalnum() or c == " ":
            return ord(c)
        if c.isdigit():
            raise self.syntax("backreferences are not supported")
        raise self.syntax(f"unrecognized escape sequence `\\{c}`")

    def hex_escape(self, kind: str) -> int:
        digits = {"x": 2, "u": 4, "U": 8}[kind]
        if self.peek() == "{":
            end = self.src.find("}", self.pos)
            if end < 0:
                raise self.syntax("unclosed hexadecimal escape")
            text = self.src[self.pos + 1 : end]
            self.pos = end + 1
        else:
            text = self.src[self.pos : self.pos + digits]
            if len(text) < digits:
                raise self.syntax("incomplete hexadecimal escape")
            self.pos += digits
        if not text or not all(ch in "0123456789abcdefABCDEF" for ch in text):
            raise self.syntax("invalid hexadecimal digit")
        cp = int(text, 16)
        if cp > MAX_SCALAR or 0xD800 <= cp <= 0xDFFF:
            raise self.syntax("hexadecimal literal is not a Unicode scalar value")
        return cp

    # ------------------------------------------------------------ groups
    def group(self) -> _Term:
        saved = self.flags.copy()
        if self.peek() != "?":
            return self.close_group("(", saved)
        self.pos += 1
        c = self.peek()
        if c == "P" and self.peek(1) == "<":
            self.pos += 2
            return self.close_group(f"(?P<{self.group_name()}>", saved)
        if c == "<" and self.peek(1) not in ("=", "!"):
            self.pos += 1
            return self.close_group(f"(?P<{self.group_name()}>", saved)
        if c in ("=", "!", "<", ">", "#") or c == "P":
            raise self.syntax("look-around, backreferences, atomic groups and comments are not supported")
        # Flags: `(?flags)` sets them to the end of the enclosing group; `(?flags:...)`
        # inside the group only.
        self.read_flags()
        if self.peek() == ")":
            self.pos += 1
            return _Term("", operand=False)
        self.pos += 1  # the `:`
        return self.close_group("(?:", saved)

    def close_group(self, opening: str, saved: _Flags) -> _Term:
        inner = self.alternation(top=False)
        if self.peek() != ")":
            raise self.syntax("unclosed group")
        self.pos += 1
        self.flags = saved
        return _Term(f"{opening}{inner.text})", unbounded=inner.unbounded, anchored=inner.anchored)

    def group_name(self) -> str:
        end = self.src.find(">", self.pos)
        if end < 0:
            raise self.syntax("unclosed capture group name")
        name = self.src[self.pos : end]
        self.pos = end + 1
        if not name:
            raise self.syntax("empty capture group name")
        if not (name[0] == "_" or name[0].isalpha()) or not all(
            ch in "_.[]" or ch.isalnum() for ch in name
        ):
            raise self.syntax("invalid capture group character")
        if not name.isidentifier():
            raise self.unsupported(f"the group name {name!r} (Python's names are identifiers)")
        if name in self.group_names:
            raise self.syntax("duplicate capture group name")
        self.group_names.append(name)
        return name

    def read_flags(self) -> None:
        """The flags of `(?flags)` or `(?flags:`, up to the `)` or `:`, applied."""
        seen = set()
        negate = False
        after_negate = False
        while True:
            c = self.peek()
            if c is None:
                raise self.syntax("unclosed group")
            if c in ":)":
                if negate and not after_negate:
                    raise self.syntax("expected flag but got end of flag group")
                if not seen and c == ")":
                    raise self.syntax("empty flag group")
                return
            self.pos += 1
            if c == "-":
                if negate:
                    raise self.syntax("duplicate negation operator")
                negate = True
                continue
            if c not in _FLAG_LETTERS:
                raise self.syntax(f"unrecognized flag `{c}`")
            if c in seen:
                raise self.syntax("duplicate flag")
            seen.add(c)
            after_negate = negate
            if c == "u":
                if negate:
                    raise self.unsupported("the flag `-u` (bytes semantics)")
                continue
            if c == "R":
                raise self.unsupported("the flag `R` (CRLF mode)")
            setattr(self.flags, c, not negate)

    # ------------------------------------------------------------ classes
    def char_class(self) -> str:
        """A bracketed class after its `[`, as `re` text."""
        negated = False
        if self.peek() == "^":
            self.pos += 1
            negated = True
        ranges: Ranges = []
        first = True
        while True:
            self.skip_space()
            c = self.peek()
            if c is None:
                raise self.syntax("unclosed character class")
            if c == "]" and not first:
                self.pos += 1
                break
            first = False
            if c == "[":
                posix = self.posix_class()
                if posix is None:
                    raise self.unsupported("a nested character class")
                ranges.extend(posix)
                continue
            if c in "&-~" and self.peek(1) == c:
                raise self.unsupported(f"a class set operation (`{c}{c}`)")
            start = self.class_item()
            if isinstance(start, list):
                ranges.extend(start)
                self.skip_space()
                if self.peek() == "-" and self.peek(1) != "]":
                    raise self.syntax("invalid range boundary, must be a literal")
                continue
            self.skip_space()
            if self.peek() == "-" and self.peek(1) not in ("]", None):
                self.pos += 1
                self.skip_space()
                end = self.class_item()
                if isinstance(end, list):
                    raise self.syntax("invalid range boundary, must be a literal")
                if end < start:
                    raise self.syntax("invalid range, the start must be <= the end")
                ranges.append((start, end))
            else:
                ranges.append((start, start))
        if not ranges:
            raise self.syntax("empty character class")
        return _class_text(ranges, negated)

    def class_item(self) -> Union[int, Ranges]:
        """One character of a class, or the ranges of an escaped class (`\\d`, `\\W`)."""
        c = self.src[self.pos]
        self.pos += 1
        if c != "\\":
            return ord(c)
        e = self.peek()
        if e is None:
            raise self.syntax("incomplete escape sequence, reached end of pattern prematurely")
        self.pos += 1
        if e in "dswDSW":
            ranges = self.perl_class(e.lower())
            return _complement(ranges) if e.isupper() else list(ranges)
        if e in "pP":
            raise self.unsupported("a Unicode property class (`\\p{...}`)")
        if e == "b":
            raise self.syntax("`\\b` is not allowed in a character class")
        return self.escaped_char(e)

    def posix_class(self) -> Optional[Ranges]:
        """`[:name:]` or `[:^name:]` at the position (its `[`), or `None`."""
        m = re.compile(r"\[:(\^?)([a-z]+):\]").match(self.src, self.pos)
        if m is None or m.group(2) not in _POSIX:
            return None
        self.pos = m.end()
        ranges = _POSIX[m.group(2)]
        return _complement(ranges) if m.group(1) else list(ranges)


def _is_white_space(c: str) -> bool:
    cp = ord(c)
    return any(lo <= cp <= hi for lo, hi in _WHITE_SPACE)


# ---------------------------------------------------------------- compiled patterns
class Pattern:
    """A Rust-syntax pattern compiled into `re`, searched with the Rust crate's rules."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.regex = self._compile(_Translator(source).translate())
        self._ascii: Optional["re.Pattern[str]"] = None
        # A pattern that never matches the empty string cannot meet the one rule in which
        # the Rust crate's iteration differs from `re.finditer`'s.
        self.never_empty = _min_width(self.regex.pattern) > 0

    def _compile(self, text: str) -> "re.Pattern[str]":
        try:
            return re.compile(text)
        except (re.error, RecursionError, OverflowError) as exc:
            raise PatternError(self.source, "unsupported", f"Python's re refuses its translation: {exc}") from None

    def for_text(self, text: str) -> "re.Pattern[str]":
        """The compiled pattern for `text`: the ASCII variant for an ASCII text."""
        if not text.isascii():
            return self.regex
        if self._ascii is None:
            self._ascii = self._compile(_Translator(self.source, ascii_text=True).translate())
        return self._ascii

    def matches(self, text: str) -> Iterator["re.Match[str]"]:
        """The non-overlapping matches, left to right, as the Rust crate finds them: after
        a match, an empty match where it ended is skipped."""
        regex = self.for_text(text)
        if self.never_empty:
            yield from regex.finditer(text)
            return
        search = regex.search
        pos = 0
        last_end = -1
        n = len(text)
        while pos <= n:
            m = search(text, pos)
            if m is None:
                return
            start, end = m.span()
            if start == end and start == last_end:
                pos = start + 1
                continue
            yield m
            pos = last_end = end

    def find_all(self, text: str, limit: Optional[int]) -> List[Dict[str, Any]]:
        offsets = _ByteOffsets(text)
        out: List[Dict[str, Any]] = []
        groups = self.regex.groups
        for m in self.matches(text):
            if limit is not None and len(out) >= limit:
                break
            start, end = m.span()
            item: Dict[str, Any] = {"match": m.group(0), "start": offsets.at(start), "end": offsets.at(end)}
            if groups:
                item["groups"] = list(m.groups())
            out.append(item)
        return out

    def count(self, text: str) -> int:
        return sum(1 for _ in self.matches(text))

    def replace(self, text: str, replacement: str, limit: int, literal: bool) -> str:
        template = None if literal else _Template(replacement, self.regex.groupindex)
        parts: List[str] = []
        last = 0
        done = 0
        for m in self.matches(text):
            if limit and done >= limit:
                break
            parts.append(text[last : m.start()])
            parts.append(replacement if template is None else template.expand(m))
            last = m.end()
            done += 1
        if not done:
            return text
        parts.append(text[last:])
        return "".join(parts)


def _min_width(pattern: str) -> int:
    """The fewest characters a match of `pattern` (`re` syntax) takes, from `re`'s own
    parser; 0 when that parser is not there to ask."""
    try:
        from re import _parser as parser  # type: ignore[attr-defined]  # Python 3.11+
    except ImportError:  # pragma: no cover - Python 3.9 and 3.10
        import sre_parse as parser  # type: ignore[no-redef]
    try:
        return int(parser.parse(pattern).getwidth()[0])
    except Exception:  # pragma: no cover - an internal API: assume the worst
        return 0


class _ByteOffsets:
    """UTF-8 byte offsets of code point offsets into one text, read left to right."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.ascii = text.isascii()
        self.char = 0
        self.byte = 0

    def at(self, index: int) -> int:
        if self.ascii:
            return index
        if index < self.char:  # not expected: matches only move right
            self.char, self.byte = 0, 0
        self.byte += len(self.text[self.char : index].encode("utf-8"))
        self.char = index
        return self.byte


_CAP_LETTERS = re.compile(r"[0-9A-Za-z_]+")
_NUMBER = re.compile(r"\+?[0-9]+")


class _Template:
    """A replacement with the Rust crate's expansion: `$$` is `$`; `$name` takes the
    longest run of `[0-9A-Za-z_]`, `${name}` anything up to `}`; a name that is a number
    (`$1`, `${+1}`) is a group number; an unknown group, or one that did not take part,
    gives ""; a `$` that starts no reference is kept."""

    def __init__(self, replacement: str, names: Any) -> None:
        self.parts: List[Union[str, int]] = []
        self.names = dict(names)
        literal: List[str] = []
        i = 0
        n = len(replacement)
        while i < n:
            j = replacement.find("$", i)
            if j < 0:
                literal.append(replacement[i:])
                break
            literal.append(replacement[i:j])
            i = j
            if replacement.startswith("$$", i):
                literal.append("$")
                i += 2
                continue
            ref, end = self._reference(replacement, i)
            if ref is None:
                literal.append("$")
                i += 1
                continue
            self.parts.append("".join(literal))
            literal = []
            self.parts.append(ref)
            i = end
        self.parts.append("".join(literal))

    def _reference(self, s: str, i: int) -> Tuple[Optional[Union[str, int]], int]:
        if i + 1 >= len(s):
            return None, i
        if s[i + 1] == "{":
            close = s.find("}", i + 2)
            if close < 0:
                return None, i
            name = s[i + 2 : close]
            end = close + 1
        else:
            m = _CAP_LETTERS.match(s, i + 1)
            if m is None:
                return None, i
            name = m.group(0)
            end = m.end()
        if _NUMBER.fullmatch(name) and int(name) < 2**64:
            return int(name), end
        return name, end

    def expand(self, m: "re.Match[str]") -> str:
        out: List[str] = []
        for k, part in enumerate(self.parts):
            if k % 2 == 0:
                out.append(part)  # type: ignore[arg-type]
                continue
            index = part if isinstance(part, int) else self.names.get(part)
            if index is None or index > m.re.groups:
                continue
            out.append(m.group(index) or "")
        return "".join(out)


class PatternCache:
    """Compiled patterns by source, the last `PATTERN_CACHE_SIZE` of them."""

    def __init__(self) -> None:
        self.patterns: Dict[str, Pattern] = {}

    def get(self, source: str) -> Pattern:
        compiled = self.patterns.get(source)
        if compiled is None:
            compiled = Pattern(source)
            if len(self.patterns) >= PATTERN_CACHE_SIZE:
                self.patterns.clear()
            self.patterns[source] = compiled
        return compiled
