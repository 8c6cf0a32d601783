//! JSON: validate, and re-serialize canonically (keys sorted, no whitespace) or pretty.

use std::borrow::Cow;

use serde::de::{Deserialize, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

use crate::error::{Error, Result};

/// How [`json_format`] writes a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum JsonStyle {
    /// Object keys sorted (by their UTF-8 bytes), no whitespace: equal documents give
    /// equal bytes, ready to hash or sign.
    #[default]
    Canonical,
    /// Object keys sorted, two-space indentation, one value per line.
    Pretty,
}

/// A style name that is neither `canonical` nor `pretty`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown JSON style {0:?}: expected \"canonical\" or \"pretty\"")]
pub struct UnknownStyle(pub String);

impl std::str::FromStr for JsonStyle {
    type Err = UnknownStyle;
    fn from_str(s: &str) -> Result<JsonStyle, UnknownStyle> {
        match s {
            "canonical" => Ok(JsonStyle::Canonical),
            "pretty" => Ok(JsonStyle::Pretty),
            other => Err(UnknownStyle(other.to_owned())),
        }
    }
}

/// Parses `input` as one JSON document and writes it again in `style`.
///
/// Numbers are written as serde_json reads them: integers that fit 64 bits exactly,
/// every other number as the shortest text that reads back as the same `f64`
/// (`1.50` becomes `1.5`, `1e2` becomes `100.0`). When a key repeats in an object, the
/// last value wins. Nesting is limited to 128 levels.
///
/// ```
/// use polyglot_native::text::{json_format, JsonStyle};
///
/// let out = json_format(b"{\"b\": [1, 2], \"a\": {\"y\": null, \"x\": true}}", JsonStyle::Canonical)?;
/// assert_eq!(out, r#"{"a":{"x":true,"y":null},"b":[1,2]}"#);
/// # Ok::<(), polyglot_native::Error>(())
/// ```
///
/// # Errors
/// [`Error::BadJson`] with the 1-based line and column of the first error.
pub fn json_format(input: &[u8], style: JsonStyle) -> Result<String> {
    let mut de = serde_json::Deserializer::from_slice(input);
    let doc = Node::deserialize(&mut de)
        .and_then(|doc| de.end().map(|()| doc))
        .map_err(|e| bad_json(input, e))?;
    let out = match style {
        JsonStyle::Canonical => serde_json::to_string(&doc),
        JsonStyle::Pretty => serde_json::to_string_pretty(&doc),
    };
    // Writing a parsed document into memory cannot fail: its numbers are finite.
    Ok(out.expect("serializing a parsed JSON document"))
}

/// Checks that `input` is one valid JSON document, without building it in memory.
///
/// # Errors
/// [`Error::BadJson`] with the 1-based line and column of the first error, and the same
/// message [`json_format`] gives.
pub fn json_validate(input: &[u8]) -> Result<()> {
    let mut de = serde_json::Deserializer::from_slice(input);
    de.deserialize_any(Check)
        .and_then(|()| de.end())
        .map_err(|e| bad_json(input, e))
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

/// A parsed document that borrows from the input: strings and keys without escapes are
/// slices of it, objects are vectors of entries sorted by key. Against serde_json's
/// `Value` (an owned `String` for every key and string, a `BTreeMap` for every object)
/// this saves most allocations; see `benches/native.rs`. Numbers are held as
/// serde_json holds them, so both write the same text.
enum Node<'a> {
    Null,
    Bool(bool),
    Uint(u64),
    Int(i64),
    Float(f64),
    Str(Cow<'a, str>),
    Array(Vec<Node<'a>>),
    /// Sorted by key, each key once (the last value given for it).
    Object(Vec<(Cow<'a, str>, Node<'a>)>),
}

impl<'de> Deserialize<'de> for Node<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Node<'de>, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node<'de>;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E>(self) -> std::result::Result<Node<'de>, E> {
        Ok(Node::Null)
    }
    fn visit_bool<E>(self, v: bool) -> std::result::Result<Node<'de>, E> {
        Ok(Node::Bool(v))
    }
    fn visit_u64<E>(self, v: u64) -> std::result::Result<Node<'de>, E> {
        Ok(Node::Uint(v))
    }
    fn visit_i64<E>(self, v: i64) -> std::result::Result<Node<'de>, E> {
        Ok(Node::Int(v))
    }
    fn visit_f64<E>(self, v: f64) -> std::result::Result<Node<'de>, E> {
        Ok(Node::Float(v))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> std::result::Result<Node<'de>, E> {
        Ok(Node::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> std::result::Result<Node<'de>, E> {
        Ok(Node::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> std::result::Result<Node<'de>, E> {
        Ok(Node::Str(Cow::Owned(v)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Node<'de>, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Node<'de>, A::Error> {
        let mut entries: Vec<(Cow<'de, str>, Node<'de>)> = Vec::new();
        while let Some(key) = map.next_key_seed(KeySeed)? {
            entries.push((key, map.next_value()?));
        }
        if !entries.is_sorted_by(|a, b| a.0 < b.0) {
            // Stable: of repeated keys, the last given stays last, and is kept.
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            entries.reverse();
            entries.dedup_by(|later, earlier| later.0 == earlier.0);
            entries.reverse();
        }
        Ok(Node::Object(entries))
    }
}

/// A key, borrowed from the input unless it has escapes. (serde's own `Cow<str>`
/// always copies.)
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;
    fn deserialize<D: Deserializer<'de>>(
        self,
        d: D,
    ) -> std::result::Result<Cow<'de, str>, D::Error> {
        d.deserialize_str(KeySeed)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Cow<'de, str>;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a key")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> std::result::Result<Cow<'de, str>, E> {
        Ok(Cow::Borrowed(v))
    }
    fn visit_str<E>(self, v: &str) -> std::result::Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> std::result::Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(v))
    }
}

impl Serialize for Node<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Node::Null => s.serialize_unit(),
            Node::Bool(b) => s.serialize_bool(*b),
            Node::Uint(n) => s.serialize_u64(*n),
            Node::Int(n) => s.serialize_i64(*n),
            Node::Float(f) => s.serialize_f64(*f),
            Node::Str(v) => s.serialize_str(v),
            Node::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Node::Object(entries) => {
                let mut map = s.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    map.serialize_entry(k.as_ref(), v)?;
                }
                map.end()
            }
        }
    }
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
    fn pretty_sorts_keys_and_indents_two_spaces() {
        let out = json_format(br#"{"b":1,"a":[true]}"#, JsonStyle::Pretty).unwrap();
        assert_eq!(out, "{\n  \"a\": [\n    true\n  ],\n  \"b\": 1\n}");
    }

    #[test]
    fn bad_json_names_line_and_column() {
        let input = b"{\n  \"a\": 1,\n  \"b\": tru\n}";
        for e in [
            json_format(input, JsonStyle::Canonical).unwrap_err(),
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
