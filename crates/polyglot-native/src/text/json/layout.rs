//! The compact and pretty styles: the document's own tokens, in its own order, with
//! new whitespace. Each token is copied as it was written (numbers, escapes, repeated
//! keys), so these styles change nothing but layout and cost one copy of the input.

use super::scan::{Container, NumberKind, Refused, Sink};

/// Indentation for the deepest document the scanner accepts: two spaces a level.
const INDENT: [u8; 2 * super::scan::JSON_MAX_DEPTH] = [b' '; 2 * super::scan::JSON_MAX_DEPTH];

/// No whitespace at all.
pub(super) struct Compact {
    pub(super) out: Vec<u8>,
}

impl<'a> Sink<'a> for Compact {
    fn open(&mut self, container: Container) {
        self.out.push(match container {
            Container::Array => b'[',
            Container::Object => b'{',
        });
    }
    fn item(&mut self, first: bool) {
        if !first {
            self.out.push(b',');
        }
    }
    fn key(&mut self, raw: &'a [u8], _: bool) -> Result<(), Refused> {
        self.out.extend_from_slice(raw);
        self.out.push(b':');
        Ok(())
    }
    fn string(&mut self, raw: &'a [u8], _: bool) -> Result<(), Refused> {
        self.out.extend_from_slice(raw);
        Ok(())
    }
    fn number(&mut self, raw: &'a [u8], _: NumberKind) -> Result<(), Refused> {
        self.out.extend_from_slice(raw);
        Ok(())
    }
    fn literal(&mut self, raw: &'static [u8]) {
        self.out.extend_from_slice(raw);
    }
    fn close(&mut self, container: Container, _: bool) {
        self.out.push(match container {
            Container::Array => b']',
            Container::Object => b'}',
        });
    }
}

/// One value per line, two spaces a level, `"key": value`, and `[]` / `{}` for empty
/// containers: the layout of serde_json's `to_string_pretty`.
pub(super) struct Pretty {
    pub(super) out: Vec<u8>,
    depth: usize,
}

impl Pretty {
    pub(super) fn new(out: Vec<u8>) -> Pretty {
        Pretty { out, depth: 0 }
    }

    fn newline(&mut self) {
        self.out.push(b'\n');
        self.out.extend_from_slice(&INDENT[..2 * self.depth]);
    }
}

impl<'a> Sink<'a> for Pretty {
    fn open(&mut self, container: Container) {
        self.depth += 1;
        self.out.push(match container {
            Container::Array => b'[',
            Container::Object => b'{',
        });
    }
    fn item(&mut self, first: bool) {
        if !first {
            self.out.push(b',');
        }
        self.newline();
    }
    fn key(&mut self, raw: &'a [u8], _: bool) -> Result<(), Refused> {
        self.out.extend_from_slice(raw);
        self.out.extend_from_slice(b": ");
        Ok(())
    }
    fn string(&mut self, raw: &'a [u8], _: bool) -> Result<(), Refused> {
        self.out.extend_from_slice(raw);
        Ok(())
    }
    fn number(&mut self, raw: &'a [u8], _: NumberKind) -> Result<(), Refused> {
        self.out.extend_from_slice(raw);
        Ok(())
    }
    fn literal(&mut self, raw: &'static [u8]) {
        self.out.extend_from_slice(raw);
    }
    fn close(&mut self, container: Container, empty: bool) {
        self.depth -= 1;
        if !empty {
            self.newline();
        }
        self.out.push(match container {
            Container::Array => b']',
            Container::Object => b'}',
        });
    }
}
