//! The canonical style: keys sorted at every depth, repeated keys reduced to the last,
//! numbers and strings in serde_json's normal form, no whitespace.
//!
//! Written in the same single pass as the other styles, without a tree. Each member of
//! an open object is written where it falls, and its key and place in the output are
//! noted. When the object closes, if its keys were not already in order, its members
//! are put in order in place: the object's output is copied aside and written back in
//! key order. An object nested in unsorted objects is so moved once per level;
//! documents are rarely deep, and a copy runs at memory speed.
//! A tree (serde_json's `Value`, or a borrowing one) would instead allocate for every
//! container and walk the document twice.
//!
//! What normal form costs is the tokens that are not already in it: numbers other than
//! short integers are read and written again as serde_json reads and writes them
//! (`1.50` becomes `1.5`, `1e2` becomes `100.0`), and strings with escapes are decoded
//! and escaped again (`"\u00e9"` becomes `"é"`). Everything else is copied.

use std::borrow::Cow;

use super::scan::{Container, NumberKind, Refused, Sink};

pub(super) struct Canonical<'a> {
    pub(super) out: Vec<u8>,
    /// Per open container: for an object, where its members start in `members`.
    open: Vec<Option<usize>>,
    /// The members of the open objects, outermost first.
    members: Vec<Member<'a>>,
    /// Where an unsorted object's output is copied while it is written back in order.
    scratch: Vec<u8>,
    /// Per depth, the last unsorted object's keys and the order they were written in.
    shapes: Vec<Shape<'a>>,
}

/// The keys of an object, in document order, and which of its members to write, in
/// key order (the last of repeated keys). The objects of an array of records usually
/// have the same keys in the same order: the next one at the same depth reuses the
/// order instead of sorting again.
#[derive(Default)]
struct Shape<'a> {
    keys: Vec<Key<'a>>,
    order: Vec<usize>,
}

/// One member of an open object: its key, unescaped, and its bytes in the output
/// (`"key":value`).
struct Member<'a> {
    key: Key<'a>,
    start: usize,
    end: usize,
}

/// A key, ordered by its bytes. Its first eight bytes, as a big-endian number padded
/// with zeros, with its length, compare most keys without comparing the slices, which
/// costs a call each.
#[derive(Clone)]
struct Key<'a> {
    prefix: u64,
    bytes: Cow<'a, [u8]>,
}

impl PartialEq for Key<'_> {
    fn eq(&self, other: &Self) -> bool {
        // Up to eight bytes, equal prefixes and lengths are equal keys.
        self.prefix == other.prefix
            && self.bytes.len() == other.bytes.len()
            && (self.bytes.len() <= 8 || self.bytes[8..] == other.bytes[8..])
    }
}

impl Eq for Key<'_> {}

impl PartialOrd for Key<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Key<'_> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.prefix.cmp(&other.prefix).then_with(|| {
            if self.bytes.len() <= 8 && other.bytes.len() <= 8 {
                // Equal prefixes: the shorter key is the start of the longer.
                self.bytes.len().cmp(&other.bytes.len())
            } else {
                self.bytes.cmp(&other.bytes)
            }
        })
    }
}

impl<'a> Key<'a> {
    fn new(bytes: Cow<'a, [u8]>) -> Key<'a> {
        let prefix = match bytes.first_chunk::<8>() {
            Some(first) => u64::from_be_bytes(*first),
            None => bytes
                .iter()
                .enumerate()
                .fold(0, |p, (i, &b)| p | u64::from(b) << (56 - 8 * i)),
        };
        Key { prefix, bytes }
    }
}

impl<'a> Canonical<'a> {
    pub(super) fn new(out: Vec<u8>) -> Canonical<'a> {
        Canonical {
            out,
            open: Vec::new(),
            members: Vec::new(),
            scratch: Vec::new(),
            shapes: Vec::new(),
        }
    }

    /// A string token in normal form; its unescaped text when it had escapes.
    fn write_string(&mut self, raw: &'a [u8], escaped: bool) -> Result<Cow<'a, [u8]>, Refused> {
        if !escaped {
            // Nothing in it that serde_json would escape: control characters are
            // invalid, and `"` and `\` appear only escaped.
            self.out.extend_from_slice(raw);
            return Ok(Cow::Borrowed(&raw[1..raw.len() - 1]));
        }
        let text: String =
            serde_json::from_slice(raw).map_err(|_| "string the scanner accepted")?;
        serde_json::to_writer(&mut self.out, &text).map_err(|_| "string not written")?;
        Ok(Cow::Owned(text.into_bytes()))
    }

    /// Puts the members of the object that is closing, `members[from..]`, at `depth`,
    /// in key order, the last of repeated keys kept.
    fn sort_members(&mut self, from: usize, depth: usize) {
        let members = &self.members[from..];
        if members.windows(2).all(|w| w[0].key < w[1].key) {
            return;
        }
        if self.shapes.len() <= depth {
            self.shapes.resize_with(depth + 1, Shape::default);
        }
        let shape = &mut self.shapes[depth];
        let same_keys = shape.keys.len() == members.len()
            && shape.keys.iter().zip(members).all(|(k, m)| *k == m.key);
        if !same_keys {
            shape.keys.clear();
            shape.keys.extend(members.iter().map(|m| m.key.clone()));
            // Indices, cheaper to move than members. Stable: of repeated keys, the last
            // given stays last, and is the one kept.
            let order = &mut shape.order;
            order.clear();
            order.extend(0..members.len());
            order.sort_by(|&a, &b| members[a].key.cmp(&members[b].key));
            let mut kept = 0;
            for i in 0..order.len() {
                let last_of_key = order
                    .get(i + 1)
                    .is_none_or(|&next| members[next].key != members[order[i]].key);
                if last_of_key {
                    order[kept] = order[i];
                    kept += 1;
                }
            }
            order.truncate(kept);
        }
        // The object's members in the output, from its first (in document order).
        let region = members[0].start;
        self.scratch.clear();
        self.scratch.extend_from_slice(&self.out[region..]);
        self.out.truncate(region);
        for (i, &m) in shape.order.iter().enumerate() {
            if i > 0 {
                self.out.push(b',');
            }
            let m = &members[m];
            self.out
                .extend_from_slice(&self.scratch[m.start - region..m.end - region]);
        }
    }
}

impl<'a> Sink<'a> for Canonical<'a> {
    fn open(&mut self, container: Container) {
        match container {
            Container::Array => {
                self.out.push(b'[');
                self.open.push(None);
            }
            Container::Object => {
                self.out.push(b'{');
                self.open.push(Some(self.members.len()));
            }
        }
    }
    fn item(&mut self, first: bool) {
        if first {
            return;
        }
        if let Some(Some(_)) = self.open.last() {
            if let Some(last) = self.members.last_mut() {
                last.end = self.out.len();
            }
        }
        self.out.push(b',');
    }
    fn key(&mut self, raw: &'a [u8], escaped: bool) -> Result<(), Refused> {
        let start = self.out.len();
        let key = self.write_string(raw, escaped)?;
        self.out.push(b':');
        self.members.push(Member {
            key: Key::new(key),
            start,
            end: start,
        });
        Ok(())
    }
    fn string(&mut self, raw: &'a [u8], escaped: bool) -> Result<(), Refused> {
        self.write_string(raw, escaped).map(drop)
    }
    fn number(&mut self, raw: &'a [u8], kind: NumberKind) -> Result<(), Refused> {
        let written = match kind {
            NumberKind::ShortInt => {
                self.out.extend_from_slice(raw);
                return Ok(());
            }
            NumberKind::ShortDecimal => {
                // The scanner checked the grammar, which is ASCII.
                let text = std::str::from_utf8(raw).map_err(|_| "number not ASCII")?;
                let f: f64 = text.parse().map_err(|_| "number the scanner accepted")?;
                serde_json::to_writer(&mut self.out, &f)
            }
            NumberKind::Other => {
                let n: serde_json::Number =
                    serde_json::from_slice(raw).map_err(|_| "number the scanner accepted")?;
                serde_json::to_writer(&mut self.out, &n)
            }
        };
        written.map_err(|_| "number not written")
    }
    fn literal(&mut self, raw: &'static [u8]) {
        self.out.extend_from_slice(raw);
    }
    fn close(&mut self, container: Container, empty: bool) {
        if let Some(Some(from)) = self.open.pop() {
            if !empty {
                if let Some(last) = self.members.last_mut() {
                    last.end = self.out.len();
                }
                self.sort_members(from, self.open.len());
            }
            self.members.truncate(from);
        }
        self.out.push(match container {
            Container::Array => b']',
            Container::Object => b'}',
        });
    }
}

#[cfg(test)]
mod tests {
    use super::super::{json_format, JsonStyle};

    fn canonical(input: &str) -> String {
        json_format(input.as_bytes(), JsonStyle::Canonical).unwrap()
    }

    fn serde_json_canonical(input: &str) -> String {
        serde_json::from_str::<serde_json::Value>(input)
            .unwrap()
            .to_string()
    }

    #[test]
    fn records_of_one_shape_reuse_the_order_and_others_do_not() {
        // Same keys, then the same keys in another order, then other keys, then
        // repeated keys, at one depth; and a nested shape between them.
        let input = r#"[
            {"b": 1, "a": {"z": 1, "y": 2}, "c": 3},
            {"b": 4, "a": {"z": 5, "y": 6}, "c": 6},
            {"c": 7, "a": {"y": 8, "z": 9}, "b": 9},
            {"b": 1, "a": 2},
            {"b": 1, "a": 2, "b": 3},
            {"b": 1, "a": 2, "b": 3},
            {"b": 1, "a": 2, "c": 3},
            {"longer than eight": 1, "longer than eight!": 2, "longer": 3},
            {"longer than eight": 1, "longer than eight!": 2, "longer": 3},
            {"a\u0000": 1, "a": 2, "\u00e9": 3, "é\u0000": 4}
        ]"#;
        assert_eq!(canonical(input), serde_json_canonical(input));
    }

    #[test]
    fn keys_compare_by_their_bytes() {
        for input in [
            r#"{"ab": 1, "a": 2, "a\u0000": 3, "": 4, "abcdefgh": 5, "abcdefg": 6, "abcdefghi": 7}"#,
            r#"{"abcdefghij": 1, "abcdefghi": 2, "abcdefgh\u0000": 3, "abcdefgh": 4}"#,
            r#"{"\u00ff": 1, "\u0100": 2, "z": 3, "\ud83d\ude00": 4, "\uffff": 5}"#,
        ] {
            assert_eq!(canonical(input), serde_json_canonical(input), "{input}");
        }
    }
}
