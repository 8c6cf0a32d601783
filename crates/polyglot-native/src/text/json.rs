//! JSON: validate, and write a document again: compact or pretty (new whitespace,
//! nothing else changed), or canonical (keys sorted, numbers and strings normalized).
//!
//! # Layout
//! - `scan`: one pass that checks a document and hands its tokens to a writer; the
//!   nesting limit [`JSON_MAX_DEPTH`].
//! - `layout`: the compact and pretty writers.
//! - `canonical`: the canonical writer, which sorts each object's members as it closes.
//! - here: the public functions, and the errors, described by serde_json.
//!
//! # Why a scanner of our own
//! serde_json's parser streaming into its serializer (`serde_transcode`) needs 33-39 ms
//! for 10 MB here, and sonic-rs's SIMD parser doing the same 24-25 ms: both decode
//! every string and number into Rust values and encode them again. The scanner checks the same grammar and copies each token's
//! bytes, so compact and pretty output cost little more than one copy of the input, and
//! canonical output adds only sorting and the tokens not already in normal form. Errors
//! are rare, so they are not described by the scanner: on one, serde_json parses the
//! input again and gives its message, line and column, so every function reports an
//! error alike. See `benches/native.rs` for the figures.

mod canonical;
mod layout;
mod scan;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

pub use scan::JSON_MAX_DEPTH;

use crate::error::{Error, Result};

/// How [`json_format`] writes a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum JsonStyle {
    /// Object keys sorted (by their UTF-8 bytes) at every depth, the last of repeated
    /// keys kept, numbers and strings in one normal form, no whitespace: equal documents
    /// give equal bytes, ready to hash or sign.
    #[default]
    Canonical,
    /// No whitespace; everything else as written: key order, repeated keys, the text
    /// of numbers and escapes.
    Compact,
    /// Two-space indentation, one value per line; everything else as written, as for
    /// [`JsonStyle::Compact`].
    Pretty,
}

/// A style name that is not `canonical`, `compact` or `pretty`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown JSON style {0:?}: expected \"canonical\", \"compact\" or \"pretty\"")]
pub struct UnknownStyle(pub String);

impl std::str::FromStr for JsonStyle {
    type Err = UnknownStyle;
    fn from_str(s: &str) -> Result<JsonStyle, UnknownStyle> {
        match s {
            "canonical" => Ok(JsonStyle::Canonical),
            "compact" => Ok(JsonStyle::Compact),
            "pretty" => Ok(JsonStyle::Pretty),
            other => Err(UnknownStyle(other.to_owned())),
        }
    }
}

/// Checks that `input` is one JSON document and writes it again in `style`.
///
/// Compact and pretty output change only whitespace. Canonical output also sorts keys,
/// keeps the last value of a repeated key, and writes numbers as serde_json reads them:
/// integers that fit 64 bits exactly, every other number as the shortest text that
/// reads back as the same `f64` (`1.50` becomes `1.5`, `1e2` becomes `100.0`), and
/// strings with only the escapes JSON requires (`"\u00e9"` becomes `"é"`). Arrays and
/// objects may nest [`JSON_MAX_DEPTH`] deep.
///
/// ```
/// use polyglot_native::text::{json_format, JsonStyle};
///
/// let input = b"{\"b\": [1, 2.50], \"a\": {\"y\": null, \"x\": true}}";
/// assert_eq!(json_format(input, JsonStyle::Canonical)?, r#"{"a":{"x":true,"y":null},"b":[1,2.5]}"#);
/// assert_eq!(json_format(input, JsonStyle::Compact)?, r#"{"b":[1,2.50],"a":{"y":null,"x":true}}"#);
/// assert_eq!(json_format(b"[1, {}]", JsonStyle::Pretty)?, "[\n  1,\n  {}\n]");
/// # Ok::<(), polyglot_native::Error>(())
/// ```
///
/// # Errors
/// [`Error::BadJson`] with the 1-based line and column of the first error.
pub fn json_format(input: &[u8], style: JsonStyle) -> Result<String> {
    let out = match style {
        JsonStyle::Canonical => {
            let mut w = canonical::Canonical::new(Vec::with_capacity(input.len()));
            scan::scan(input, &mut w).map(|()| w.out)
        }
        JsonStyle::Compact => {
            let mut w = layout::Compact {
                out: Vec::with_capacity(input.len()),
            };
            scan::scan(input, &mut w).map(|()| w.out)
        }
        JsonStyle::Pretty => {
            // Pretty output of a compact document is about 1.5 times its size (records
            // of short values, more with depth). Twice the input avoids growing, which
            // would copy the whole output; pages never written are never touched.
            let mut w = layout::Pretty::new(Vec::with_capacity(2 * input.len()));
            scan::scan(input, &mut w).map(|()| w.out)
        }
    }
    .map_err(|invalid| describe(input, invalid))?;
    // The output is the input's UTF-8 text and serde_json's, rearranged.
    String::from_utf8(out).map_err(|e| {
        describe(
            input,
            scan::Invalid {
                at: e.utf8_error().valid_up_to(),
                what: "output not UTF-8",
            },
        )
    })
}

/// Checks that `input` is one valid JSON document, without building it in memory.
///
/// # Errors
/// [`Error::BadJson`] with the 1-based line and column of the first error, and the same
/// message [`json_format`] gives.
pub fn json_validate(input: &[u8]) -> Result<()> {
    scan::scan(input, &mut ()).map_err(|invalid| describe(input, invalid))
}

/// The error for `input`, which the scanner refused at `invalid`: serde_json's, with
/// its message and position. Should serde_json accept the input (the tests rule it
/// out), the scanner's own finding.
fn describe(input: &[u8], invalid: scan::Invalid) -> Error {
    match serde_json_check(input) {
        Err(e) => bad_json(input, e),
        Ok(()) => {
            let before = &input[..invalid.at.min(input.len())];
            let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
            let column = before.len()
                - before
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map_or(0, |p| p + 1)
                + 1;
            Error::BadJson {
                line,
                column,
                message: invalid.what.to_owned(),
                source: serde::de::Error::custom(invalid.what),
            }
        }
    }
}

/// serde_json's verdict on `input`, parsing every value (not skipping), as the scanner
/// judges it.
fn serde_json_check(input: &[u8]) -> std::result::Result<(), serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(input);
    de.deserialize_any(Check).and_then(|()| de.end())
}

/// Walks a document and keeps nothing. serde's `IgnoredAny` would be as fast but takes
/// serde_json's skipping path, whose errors are vaguer ("expected value" where parsing
/// says "trailing comma"); this visitor takes the parsing path, so both methods report
/// an error alike.
struct Check;

impl<'de> DeserializeSeed<'de> for Check {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<(), D::Error> {
        d.deserialize_any(Check)
    }
}

impl<'de> Visitor<'de> for Check {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> std::result::Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> std::result::Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> std::result::Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> std::result::Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> std::result::Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> std::result::Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<(), A::Error> {
        while seq.next_element_seed(Check)?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<(), A::Error> {
        // Keys through `Check` too: a skipped key would not be checked for valid UTF-8.
        while map.next_key_seed(Check)?.is_some() {
            map.next_value_seed(Check)?;
        }
        Ok(())
    }
}

fn bad_json(input: &[u8], e: serde_json::Error) -> Error {
    // serde_json's message ends with " at line L column C"; the position is kept in
    // fields instead.
    let full = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    let message = full.strip_suffix(&suffix).unwrap_or(&full).to_owned();
    let (line, column) = position(input, e.line(), e.column());
    Error::BadJson {
        line,
        column,
        message,
        source: e,
    }
}

/// serde_json reports an error found at a newline (`tru` then a line break) as column 0
/// of the next line; people look for it at the end of the line it ends, so that is what
/// is reported: the newline's own column there.
fn position(input: &[u8], line: usize, column: usize) -> (usize, usize) {
    if column > 0 || line < 2 {
        return (line, column);
    }
    let Some(prev) = input.split(|b| *b == b'\n').nth(line - 2) else {
        return (line, column);
    };
    (line - 1, prev.len() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_of_repeated_keys_wins_and_escapes_survive() {
        let out = json_format(
            br#"{"b":1,"a":2,"b":3,"\u0041":"x\ty","a":4}"#,
            JsonStyle::Canonical,
        )
        .unwrap();
        assert_eq!(out, r#"{"A":"x\ty","a":4,"b":3}"#);
        // The same as serde_json's own `Value` gives.
        let v: serde_json::Value =
            serde_json::from_str(r#"{"b":1,"a":2,"b":3,"\u0041":"x\ty","a":4}"#).unwrap();
        assert_eq!(out, v.to_string());
    }

    #[test]
    fn numbers_are_written_as_serde_json_writes_them() {
        let input = br#"[0, -1, 18446744073709551615, -9223372036854775808, 1.50, 1e2, 2.5e-8, -0.0, 123456789012345678901234567890]"#;
        let v: serde_json::Value = serde_json::from_slice(input).unwrap();
        assert_eq!(
            json_format(input, JsonStyle::Canonical).unwrap(),
            v.to_string()
        );
    }

    #[test]
    fn short_decimals_read_as_serde_json_reads_them() {
        // Canonical output reads decimals of up to 15 digits with the standard library's
        // parser instead of serde_json's; both must give the same `f64` for every one.
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut doc = String::from("[");
        for i in 0..20_000 {
            let digits = 2 + rng.below(14);
            let point = 1 + rng.below(digits - 1);
            let mut n: String = (0..digits)
                .map(|_| char::from(b'0' + rng.below(10) as u8))
                .collect();
            // No leading zero unless it is the only integer digit.
            if point > 1 && n.starts_with('0') {
                n.replace_range(0..1, "7");
            }
            n.insert(point, '.');
            if i % 2 == 1 {
                n.insert(0, '-');
            }
            if i > 0 {
                doc.push(',');
            }
            doc.push_str(&n);
        }
        doc.push(']');
        let value: serde_json::Value = serde_json::from_str(&doc).unwrap();
        assert_eq!(
            json_format(doc.as_bytes(), JsonStyle::Canonical).unwrap(),
            value.to_string()
        );
    }

    #[test]
    fn compact_and_pretty_change_only_whitespace() {
        let input = br#" {"b" : 1, "a":[true, 1.50, 1e2, "\u0041"], "b": {} , "c": [ ]} "#;
        assert_eq!(
            json_format(input, JsonStyle::Compact).unwrap(),
            r#"{"b":1,"a":[true,1.50,1e2,"\u0041"],"b":{},"c":[]}"#
        );
        assert_eq!(
            json_format(input, JsonStyle::Pretty).unwrap(),
            "{\n  \"b\": 1,\n  \"a\": [\n    true,\n    1.50,\n    1e2,\n    \"\\u0041\"\n  ],\n  \
             \"b\": {},\n  \"c\": []\n}"
        );
        assert_eq!(json_format(b" 7 ", JsonStyle::Pretty).unwrap(), "7");
    }

    /// Deterministic pseudo-random numbers (xorshift64*).
    struct Rng(u64);
    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n as u64) as usize
        }
        fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
            from[self.below(from.len())]
        }
    }

    /// A random valid document with every kind of token: repeated keys, escapes,
    /// numbers in every form, odd whitespace.
    fn document(rng: &mut Rng, depth: usize, out: &mut String) {
        const NUMBERS: &[&str] = &[
            "0",
            "-0",
            "7",
            "-12",
            "1.50",
            "1e2",
            "2.5E-8",
            "-0.0",
            "0.1",
            "3.141592653589793",
            "18446744073709551615",
            "18446744073709551616",
            "-9223372036854775808",
            "-9223372036854775809",
            "123456789012345678",
            "1234567890123456789",
            "123456789012345678901234567890",
            "1E+300",
            "5e-324",
            "1e-400",
            "12.340e1",
        ];
        const PIECES: &[&str] = &[
            "a",
            "key",
            "\\u00e9",
            "é",
            "\\n",
            "\\t",
            "\\\"",
            "\\\\",
            "\\/",
            "\\u0000",
            "\x7f",
            "\\ud83d\\ude00",
            "😀",
            "日本",
            "\\b\\f\\r",
            "\\u001F",
            " ",
            "\\u2028",
        ];
        const KEYS: &[&str] = &["a", "b", "B", "aa", "\\u0061", "é", "\\u00e9", "", "z"];
        const SPACE: &[&str] = &["", "", "", " ", "\n", "\t ", "\r\n  "];
        out.push_str(rng.pick(SPACE));
        match if depth == 0 {
            rng.below(4)
        } else {
            rng.below(7)
        } {
            0 => out.push_str(rng.pick(&["null", "true", "false"])),
            1 => out.push_str(rng.pick(NUMBERS)),
            2 | 3 => {
                out.push('"');
                for _ in 0..rng.below(4) {
                    out.push_str(rng.pick(PIECES));
                }
                out.push('"');
            }
            4 | 5 => {
                out.push('{');
                for i in 0..rng.below(5) {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(rng.pick(SPACE));
                    out.push('"');
                    out.push_str(rng.pick(KEYS));
                    out.push('"');
                    out.push_str(rng.pick(SPACE));
                    out.push(':');
                    document(rng, depth - 1, out);
                }
                out.push_str(rng.pick(SPACE));
                out.push('}');
            }
            _ => {
                out.push('[');
                for i in 0..rng.below(5) {
                    if i > 0 {
                        out.push(',');
                    }
                    document(rng, depth - 1, out);
                }
                out.push_str(rng.pick(SPACE));
                out.push(']');
            }
        }
        out.push_str(rng.pick(SPACE));
    }

    #[test]
    fn every_style_agrees_with_serde_json_on_generated_documents() {
        let mut rng = Rng(0x2545_F491_4F6C_DD1D);
        for _ in 0..5_000 {
            let mut doc = String::new();
            document(&mut rng, 4, &mut doc);
            let input = doc.as_bytes();
            let value: serde_json::Value = serde_json::from_slice(input).unwrap();

            // Canonical: what serde_json's `Value` (sorted maps, the last repeated key)
            // writes.
            let canonical = json_format(input, JsonStyle::Canonical).unwrap();
            assert_eq!(canonical, value.to_string(), "{doc}");

            // Compact and pretty: the same document, only whitespace changed.
            let compact = json_format(input, JsonStyle::Compact).unwrap();
            let pretty = json_format(input, JsonStyle::Pretty).unwrap();
            let stripped: String = {
                // The input without whitespace outside strings.
                let mut in_string = false;
                let mut escaped = false;
                doc.chars()
                    .filter(|&c| {
                        let keep = in_string || !matches!(c, ' ' | '\n' | '\t' | '\r');
                        if in_string {
                            if escaped {
                                escaped = false;
                            } else if c == '\\' {
                                escaped = true;
                            } else if c == '"' {
                                in_string = false;
                            }
                        } else if c == '"' {
                            in_string = true;
                        }
                        keep
                    })
                    .collect()
            };
            assert_eq!(compact, stripped, "{doc}");
            assert_eq!(
                json_format(pretty.as_bytes(), JsonStyle::Compact).unwrap(),
                compact
            );

            // On a canonical document, pretty is serde_json's own pretty layout.
            assert_eq!(
                json_format(canonical.as_bytes(), JsonStyle::Pretty).unwrap(),
                serde_json::to_string_pretty(&value).unwrap(),
                "{doc}"
            );
        }
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        // Regression guard for the recursion a tree-building parser does: 100,000
        // nested arrays must be refused at the limit, in every style.
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        for result in [
            json_format(deep.as_bytes(), JsonStyle::Canonical).map(drop),
            json_format(deep.as_bytes(), JsonStyle::Compact).map(drop),
            json_format(deep.as_bytes(), JsonStyle::Pretty).map(drop),
            json_validate(deep.as_bytes()),
        ] {
            match result {
                Err(Error::BadJson {
                    line: 1,
                    column,
                    message,
                    ..
                }) => {
                    assert_eq!(column, JSON_MAX_DEPTH + 1);
                    assert_eq!(message, "recursion limit exceeded");
                }
                other => panic!("expected the recursion limit, got {other:?}"),
            }
        }
        // The limit itself is fine.
        let at_limit = format!(
            "{}{}",
            "[".repeat(JSON_MAX_DEPTH),
            "]".repeat(JSON_MAX_DEPTH)
        );
        let pretty = json_format(at_limit.as_bytes(), JsonStyle::Pretty).unwrap();
        assert_eq!(pretty.lines().count(), 2 * JSON_MAX_DEPTH - 1);
        assert_eq!(
            json_format(at_limit.as_bytes(), JsonStyle::Canonical).unwrap(),
            at_limit
        );
    }

    #[test]
    fn bad_json_names_line_and_column() {
        let input = b"{\n  \"a\": 1,\n  \"b\": tru\n}";
        for e in [
            json_format(input, JsonStyle::Canonical).unwrap_err(),
            json_format(input, JsonStyle::Compact).unwrap_err(),
            json_format(input, JsonStyle::Pretty).unwrap_err(),
            json_validate(input).unwrap_err(),
        ] {
            match e {
                Error::BadJson {
                    line,
                    column,
                    ref message,
                    ..
                } => {
                    assert_eq!((line, column), (3, 11), "{message}");
                    assert_eq!(message, "expected ident");
                }
                other => panic!("expected BadJson, got {other:?}"),
            }
        }
    }

    #[test]
    fn an_error_mid_line_keeps_serde_json_position() {
        match json_validate(b"[1, 2,, 3]") {
            Err(Error::BadJson {
                line: 1,
                column: 7,
                message,
                ..
            }) => assert_eq!(message, "expected value"),
            other => panic!("expected BadJson at 1:7, got {other:?}"),
        }
    }

    #[test]
    fn trailing_text_and_empty_input_are_bad_json() {
        assert!(matches!(
            json_validate(b"{} {}"),
            Err(Error::BadJson {
                line: 1,
                column: 4,
                ..
            })
        ));
        assert!(matches!(json_validate(b""), Err(Error::BadJson { .. })));
        assert!(json_validate(b"  [1, 2.5e3, \"\\u00e9\"]\n").is_ok());
        // Invalid UTF-8 is refused in keys and values alike.
        assert!(matches!(
            json_validate(b"{\"\xff\": 1}"),
            Err(Error::BadJson { .. })
        ));
        assert!(matches!(
            json_validate(b"[\"\xff\"]"),
            Err(Error::BadJson { .. })
        ));
    }
}
