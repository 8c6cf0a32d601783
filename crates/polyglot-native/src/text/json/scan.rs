//! One pass over a JSON document that checks it and hands each token, as the bytes it
//! was written with, to a [`Sink`]. No tree, no recursion: open arrays and objects are
//! a stack of bytes, bounded by [`JSON_MAX_DEPTH`].
//!
//! The scanner accepts exactly what serde_json accepts (the tests compare the two on
//! thousands of generated inputs), so that every style of `json_format` and
//! `json_validate` agree. It does not describe errors: it says where it stopped, and
//! serde_json, run again on the rejected input, gives the message, line and column
//! (see `json.rs`).

/// How deeply arrays and objects may nest: 127 levels, serde_json's own limit (it
/// refuses the 128th), so that the scanner and serde_json accept the same documents.
/// Deeper input is an error, not a stack overflow; nothing here recurses over the input.
pub const JSON_MAX_DEPTH: usize = 127;

/// An array or an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Container {
    Array,
    Object,
}

/// What a number's text says about the value serde_json reads from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum NumberKind {
    /// An integer of at most 18 digits, not `-0`: read as an `i64` or `u64` and
    /// written back as the same text.
    ShortInt,
    /// A fraction, no exponent, at most 15 digits in all: an `f64` that any correctly
    /// rounding parser reads alike. serde_json computes it as the digits (exact below
    /// 2^53) divided by a power of ten (exact up to 10^22): one rounding, the correct
    /// one.
    ShortDecimal,
    /// Anything else: what serde_json reads is best asked of serde_json.
    Other,
}

/// Receives a document's tokens in order. Strings and keys come with their quotes, and
/// with `escaped` set when they hold a backslash escape; numbers with their
/// [`NumberKind`]. A sink fails, saying why, only on input the scanner accepted and
/// serde_json refused, which the tests rule out.
pub(super) trait Sink<'a> {
    /// `[` or `{`.
    fn open(&mut self, container: Container);
    /// Before each element of an array or member of an object; `first` for the first.
    fn item(&mut self, first: bool);
    /// An object's key.
    fn key(&mut self, raw: &'a [u8], escaped: bool) -> Result<(), Refused>;
    /// A string value.
    fn string(&mut self, raw: &'a [u8], escaped: bool) -> Result<(), Refused>;
    /// A number.
    fn number(&mut self, raw: &'a [u8], kind: NumberKind) -> Result<(), Refused>;
    /// `true`, `false` or `null`.
    fn literal(&mut self, raw: &'static [u8]);
    /// `]` or `}`; `empty` when the container held nothing.
    fn close(&mut self, container: Container, empty: bool);
}

/// Checks a document and keeps nothing: `json_validate`.
impl<'a> Sink<'a> for () {
    fn open(&mut self, _: Container) {}
    fn item(&mut self, _: bool) {}
    fn key(&mut self, _: &'a [u8], _: bool) -> Result<(), Refused> {
        Ok(())
    }
    fn string(&mut self, _: &'a [u8], _: bool) -> Result<(), Refused> {
        Ok(())
    }
    fn number(&mut self, _: &'a [u8], _: NumberKind) -> Result<(), Refused> {
        Ok(())
    }
    fn literal(&mut self, _: &'static [u8]) {}
    fn close(&mut self, _: Container, _: bool) {}
}

/// Where and why the scan stopped. Only used when serde_json, asked for the details,
/// finds nothing wrong (a disagreement the tests rule out).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Invalid {
    /// Byte offset of the problem.
    pub(crate) at: usize,
    /// What was wrong.
    pub(crate) what: &'static str,
}

/// Why a sink refused a token the scanner accepted.
pub(super) type Refused = &'static str;

fn invalid<T>(at: usize, what: &'static str) -> Result<T, Invalid> {
    Err(Invalid { at, what })
}

/// Scans `input`, one JSON document, feeding `sink`.
///
/// # Errors
/// [`Invalid`] at the first problem found.
pub(super) fn scan<'a, S: Sink<'a>>(input: &'a [u8], sink: &mut S) -> Result<(), Invalid> {
    // Checked once for the whole input: outside strings any byte past ASCII is an error
    // anyway, and inside them serde_json requires UTF-8. The check runs at memory speed.
    if let Err(e) = std::str::from_utf8(input) {
        return invalid(e.valid_up_to(), "invalid UTF-8");
    }
    Scanner {
        input,
        pos: 0,
        open: Vec::new(),
    }
    .run(sink)
}

struct Scanner<'a> {
    input: &'a [u8],
    pos: usize,
    /// The open containers, innermost last.
    open: Vec<Container>,
}

impl<'a> Scanner<'a> {
    fn run<S: Sink<'a>>(mut self, sink: &mut S) -> Result<(), Invalid> {
        self.skip_whitespace();
        'value: loop {
            // A value starts here (whitespace skipped).
            match self.peek() {
                Some(b'[') => {
                    self.enter(Container::Array)?;
                    sink.open(Container::Array);
                    self.pos += 1;
                    self.skip_whitespace();
                    if self.peek() == Some(b']') {
                        self.pos += 1;
                        self.open.pop();
                        sink.close(Container::Array, true);
                    } else {
                        sink.item(true);
                        continue 'value;
                    }
                }
                Some(b'{') => {
                    self.enter(Container::Object)?;
                    sink.open(Container::Object);
                    self.pos += 1;
                    self.skip_whitespace();
                    if self.peek() == Some(b'}') {
                        self.pos += 1;
                        self.open.pop();
                        sink.close(Container::Object, true);
                    } else {
                        sink.item(true);
                        self.member_key(sink)?;
                        continue 'value;
                    }
                }
                Some(b'"') => {
                    let at = self.pos;
                    let (raw, escaped) = self.string()?;
                    sink.string(raw, escaped)
                        .or_else(|what| invalid(at, what))?;
                }
                Some(b'-' | b'0'..=b'9') => {
                    let at = self.pos;
                    let (raw, kind) = self.number()?;
                    sink.number(raw, kind).or_else(|what| invalid(at, what))?;
                }
                Some(b't') => sink.literal(self.literal(b"true")?),
                Some(b'f') => sink.literal(self.literal(b"false")?),
                Some(b'n') => sink.literal(self.literal(b"null")?),
                Some(_) => return invalid(self.pos, "expected value"),
                None => return invalid(self.pos, "EOF while parsing a value"),
            }
            // After a value: a comma and the next one, or the end of containers.
            loop {
                self.skip_whitespace();
                let Some(&container) = self.open.last() else {
                    return match self.peek() {
                        None => Ok(()),
                        Some(_) => invalid(self.pos, "trailing characters"),
                    };
                };
                let close = match container {
                    Container::Array => b']',
                    Container::Object => b'}',
                };
                match self.peek() {
                    Some(b',') => {
                        self.pos += 1;
                        self.skip_whitespace();
                        sink.item(false);
                        if container == Container::Object {
                            self.member_key(sink)?;
                        }
                        continue 'value;
                    }
                    Some(c) if c == close => {
                        self.pos += 1;
                        self.open.pop();
                        sink.close(container, false);
                    }
                    Some(_) => return invalid(self.pos, "expected `,` or the container's end"),
                    None => return invalid(self.pos, "EOF while parsing a container"),
                }
            }
        }
    }

    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn enter(&mut self, container: Container) -> Result<(), Invalid> {
        if self.open.len() >= JSON_MAX_DEPTH {
            return invalid(self.pos, "recursion limit exceeded");
        }
        self.open.push(container);
        Ok(())
    }

    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    /// A key, its colon, and the whitespace up to the value.
    fn member_key<S: Sink<'a>>(&mut self, sink: &mut S) -> Result<(), Invalid> {
        if self.peek() != Some(b'"') {
            return invalid(self.pos, "key must be a string");
        }
        let at = self.pos;
        let (raw, escaped) = self.string()?;
        sink.key(raw, escaped).or_else(|what| invalid(at, what))?;
        self.skip_whitespace();
        if self.peek() != Some(b':') {
            return invalid(self.pos, "expected `:`");
        }
        self.pos += 1;
        self.skip_whitespace();
        Ok(())
    }

    fn literal(&mut self, word: &'static [u8]) -> Result<&'static [u8], Invalid> {
        if self.input[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(word)
        } else {
            invalid(self.pos, "expected ident")
        }
    }

    /// A string at `pos` (its opening quote): its bytes with quotes, and whether it has
    /// escapes.
    fn string(&mut self) -> Result<(&'a [u8], bool), Invalid> {
        let input = self.input;
        let start = self.pos;
        let mut i = start + 1;
        let mut escaped = false;
        loop {
            i += plain_run(&input[i..]);
            match input.get(i) {
                Some(b'"') => {
                    self.pos = i + 1;
                    return Ok((&input[start..=i], escaped));
                }
                Some(b'\\') => {
                    escaped = true;
                    i = escape(input, i)?;
                }
                Some(_) => {
                    return invalid(i, "control character (\\u0000-\\u001F) found in a string")
                }
                None => return invalid(i, "EOF while parsing a string"),
            }
        }
    }

    /// A number at `pos`: its bytes and its [`NumberKind`].
    /// Numbers that may be out of `f64`'s range (an exponent, or more than 18 integer
    /// digits) are read by serde_json, which refuses those that are.
    fn number(&mut self) -> Result<(&'a [u8], NumberKind), Invalid> {
        let input = self.input;
        let start = self.pos;
        let mut i = start;
        let negative = input[i] == b'-';
        if negative {
            i += 1;
        }
        let int_start = i;
        match input.get(i) {
            Some(b'0') => i += 1,
            Some(b'1'..=b'9') => i += 1 + digits(&input[i + 1..]),
            _ => return invalid(i, "invalid number"),
        }
        let int_digits = i - int_start;
        let mut fraction_digits = 0;
        if input.get(i) == Some(&b'.') {
            fraction_digits = digits(&input[i + 1..]);
            if fraction_digits == 0 {
                return invalid(i + 1, "invalid number");
            }
            i += 1 + fraction_digits;
        }
        let mut exponent = false;
        if let Some(b'e' | b'E') = input.get(i) {
            exponent = true;
            i += 1;
            if let Some(b'+' | b'-') = input.get(i) {
                i += 1;
            }
            let n = digits(&input[i..]);
            if n == 0 {
                return invalid(i, "invalid number");
            }
            i += n;
        }
        let raw = &input[start..i];
        if (exponent || int_digits > 18)
            && serde_json::from_slice::<serde_json::Number>(raw).is_err()
        {
            return invalid(start, "number out of range");
        }
        self.pos = i;
        let kind = if exponent {
            NumberKind::Other
        } else if fraction_digits == 0 {
            if int_digits <= 18 && raw != b"-0" {
                NumberKind::ShortInt
            } else {
                NumberKind::Other
            }
        } else if int_digits + fraction_digits <= 15 {
            NumberKind::ShortDecimal
        } else {
            NumberKind::Other
        };
        Ok((raw, kind))
    }
}

/// How many ASCII digits `bytes` starts with.
fn digits(bytes: &[u8]) -> usize {
    bytes.iter().take_while(|b| b.is_ascii_digit()).count()
}

/// The escape at `input[at]` (a backslash), checked as serde_json checks it for a
/// string: one of `\" \\ \/ \b \f \n \r \t`, or `\uXXXX` where a surrogate must be a
/// leading one followed by a trailing one. Returns the offset after it.
fn escape(input: &[u8], at: usize) -> Result<usize, Invalid> {
    match input.get(at + 1) {
        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => Ok(at + 2),
        Some(b'u') => {
            let n = hex4(input, at + 2)?;
            match n {
                0xDC00..=0xDFFF => invalid(at, "lone leading surrogate in hex escape"),
                0xD800..=0xDBFF => {
                    if input.get(at + 6) != Some(&b'\\') || input.get(at + 7) != Some(&b'u') {
                        return invalid(at + 6, "unexpected end of hex escape");
                    }
                    match hex4(input, at + 8)? {
                        0xDC00..=0xDFFF => Ok(at + 12),
                        _ => invalid(at + 8, "lone leading surrogate in hex escape"),
                    }
                }
                _ => Ok(at + 6),
            }
        }
        Some(_) => invalid(at + 1, "invalid escape"),
        None => invalid(at + 1, "EOF while parsing a string"),
    }
}

/// Four hex digits at `input[at..]`.
fn hex4(input: &[u8], at: usize) -> Result<u16, Invalid> {
    let Some(hex) = input.get(at..at + 4) else {
        return invalid(input.len(), "EOF while parsing a string");
    };
    let mut n = 0u16;
    for (k, &c) in hex.iter().enumerate() {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => return invalid(at + k, "invalid escape"),
        };
        n = n << 4 | u16::from(d);
    }
    Ok(n)
}

/// How many bytes `bytes` starts with that a string holds as they are: everything but
/// `"`, `\` and control characters. Eight bytes at a time: with `LO = 0x0101...01` and
/// `HI = 0x8080...80`, `(v - LO * n) & !v & HI` flags the bytes of `v` below `n`
/// (bytes with the top bit set never); applied to `v ^ (LO * c)` with `n = 1`, the bytes
/// equal to `c`. A flag can be wrong only above a byte correctly flagged, so the lowest
/// flag is always the first byte to stop at.
fn plain_run(bytes: &[u8]) -> usize {
    const LO: u64 = u64::from_ne_bytes([0x01; 8]);
    const HI: u64 = u64::from_ne_bytes([0x80; 8]);
    let below = |v: u64, n: u8| v.wrapping_sub(LO * u64::from(n)) & !v & HI;
    let mut chunks = bytes.chunks_exact(8);
    let mut n = 0;
    for chunk in chunks.by_ref() {
        let v = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
        let stop = below(v, 0x20)
            | below(v ^ (LO * u64::from(b'"')), 1)
            | below(v ^ (LO * u64::from(b'\\')), 1);
        if stop != 0 {
            return n + (stop.trailing_zeros() / 8) as usize;
        }
        n += 8;
    }
    n + chunks
        .remainder()
        .iter()
        .take_while(|&&b| b >= 0x20 && b != b'"' && b != b'\\')
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accepts(input: &[u8]) -> bool {
        scan(input, &mut ()).is_ok()
    }

    fn serde_json_accepts(input: &[u8]) -> bool {
        super::super::serde_json_check(input).is_ok()
    }

    #[test]
    fn plain_run_stops_at_the_first_special_byte() {
        for (s, n) in [
            (&b"abcdefgh\"ij"[..], 8),
            (b"abc\"defghijk", 3),
            (b"a\\bcdefghijklmnop", 1),
            (b"abcdefghijklmno\x1f", 15),
            (b"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\"", 10),
            (b"\x7f\x7f\x7f\x7f\x7f\x7f\x7f\x7f\x7f", 9),
            (b"!!!!!!!!\x00\"", 8),
            (b"", 0),
        ] {
            assert_eq!(plain_run(s), n, "{:?}", String::from_utf8_lossy(s));
        }
    }

    #[test]
    fn the_nesting_limit_is_serde_json_limit() {
        for depth in [
            JSON_MAX_DEPTH - 1,
            JSON_MAX_DEPTH,
            JSON_MAX_DEPTH + 1,
            JSON_MAX_DEPTH + 2,
        ] {
            for (open, close) in [("[", "]"), ("{\"a\":", "}")] {
                let doc = format!("{}1{}", open.repeat(depth), close.repeat(depth));
                assert_eq!(
                    accepts(doc.as_bytes()),
                    serde_json_accepts(doc.as_bytes()),
                    "{open} x {depth}"
                );
                assert_eq!(accepts(doc.as_bytes()), depth <= JSON_MAX_DEPTH);
            }
        }
    }

    #[test]
    fn edge_cases_are_judged_as_serde_json_judges_them() {
        let cases: &[&[u8]] = &[
            b"0",
            b"-0",
            b"-",
            b"01",
            b"1.",
            b".5",
            b"1e",
            b"1e+",
            b"1E-2",
            b"1e400",
            b"-1e400",
            b"0e99999999999999999999",
            b"1e-400",
            b"123456789012345678901234567890",
            b"1.7976931348623157e308",
            b"1.7976931348623159e308",
            b"2e308",
            b"\"\\ud800\"",
            b"\"\\ud800\\udc00\"",
            b"\"\\udc00\"",
            b"\"\\ud800\\u0041\"",
            b"\"\\ud800x\"",
            b"\"\\u00e9\\/\\b\\f\\n\\r\\t\\\"\\\\\"",
            b"\"\\x\"",
            b"\"\\u12G4\"",
            b"\"\\u12\"",
            b"\"tab\there\"",
            b"\"del\x7f\"",
            b"\"\xff\"",
            b"\"\xc3\xa9\"",
            b"\xef\xbb\xbf1",
            b" \t\r\n1 \t\r\n",
            b"\x0c1",
            b"[1,]",
            b"[,1]",
            b"{\"a\":1,}",
            b"{\"a\" 1}",
            b"{1:1}",
            b"{\"a\":}",
            b"[1 2]",
            b"tru",
            b"nul",
            b"true false",
            b"[]]",
            b"",
            b" ",
            b"[",
            b"{",
            b"\"",
            b"\"abc",
            b"[\"a\",{\"b\":[null,true,false,-1.5e-3]}]",
        ];
        for &case in cases {
            assert_eq!(
                accepts(case),
                serde_json_accepts(case),
                "{:?}",
                String::from_utf8_lossy(case)
            );
        }
    }

    /// Deterministic pseudo-random numbers (xorshift64*).
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    #[test]
    fn generated_inputs_are_judged_as_serde_json_judges_them() {
        // Short strings over JSON's alphabet, and valid documents with one byte changed,
        // removed or added: together they reach every error the grammar has.
        const ALPHABET: &[u8] = b"[]{}\",:\\/ \n0123456789-+.eEtrufalsn\x01\xc3\xa9ubd";
        const DOCS: &[&[u8]] = &[
            br#"{"a":[1,-2.5e3,true,false,null],"b":{"c":"x\u00e9\n","d":[]},"e":{}}"#,
            br#"[0, -0, 1.25, 1E+2, "\ud83d\ude00", "\\\"", [[[]]], {"k": {"k": 1}}]"#,
        ];
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut checked = 0;
        for _ in 0..20_000 {
            let len = rng.below(12);
            let input: Vec<u8> = (0..len)
                .map(|_| ALPHABET[rng.below(ALPHABET.len())])
                .collect();
            assert_eq!(
                accepts(&input),
                serde_json_accepts(&input),
                "{:?}",
                String::from_utf8_lossy(&input)
            );
            checked += 1;
        }
        for doc in DOCS {
            assert!(accepts(doc));
            for _ in 0..10_000 {
                let mut input = doc.to_vec();
                let at = rng.below(input.len());
                match rng.below(3) {
                    0 => input[at] = ALPHABET[rng.below(ALPHABET.len())],
                    1 => {
                        input.remove(at);
                    }
                    _ => input.insert(at, ALPHABET[rng.below(ALPHABET.len())]),
                }
                assert_eq!(
                    accepts(&input),
                    serde_json_accepts(&input),
                    "{:?}",
                    String::from_utf8_lossy(&input)
                );
                checked += 1;
            }
        }
        assert_eq!(checked, 40_000);
    }
}
