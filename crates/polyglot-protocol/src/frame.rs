//! [`FrameReader`]: splits a byte stream into frames, without doing any I/O.
//!
//! The caller reads into [`FrameReader::read_buf`], reports how much it read with
//! [`FrameReader::filled`], then takes frames with [`FrameReader::next_frame`] until it
//! returns `None` ("need more bytes", a normal state, not an error). At end of stream,
//! [`FrameReader::finish`] tells a clean end from one inside a frame.
//!
//! An oversize frame is never buffered whole: the reader keeps its first
//! [`HEAD_BYTES`] bytes (to read its `id`), counts and drops the rest, and yields
//! [`Frame::TooLarge`]; the frames after it are read normally. A MessagePack length over
//! the limit not followed by a map (every message is one) is stray bytes, not a frame: its
//! five bytes are yielded as data, which does not decode.

use std::ops::Range;

use crate::codec::Codec;
use crate::error::Truncated;
use crate::id::Id;

/// How much of an oversize frame is kept to read its `id` from. Writers put `id` first,
/// so a few hundred bytes hold it even when it is a long string.
pub const HEAD_BYTES: usize = 512;

/// The default frame size limit: 64 MiB, large enough for real payloads (images, model
/// inputs) and small enough that a runaway writer cannot exhaust the host's memory.
pub const DEFAULT_MAX_FRAME: usize = 64 * 1024 * 1024;

/// How much free space [`FrameReader::read_buf`] offers at least: one read takes up to a
/// pipe's default capacity (64 KiB on Linux), so a burst is drained in one syscall.
const MIN_READ: usize = 64 * 1024;

/// Length of the MessagePack frame prefix.
const PREFIX: usize = 4;

/// Whether `b` starts a MessagePack map (fixmap, map 16, map 32).
fn is_map_marker(b: u8) -> bool {
    matches!(b, 0x80..=0x8f | 0xde | 0xdf)
}

/// What [`FrameReader::next_frame`] yields.
#[derive(Debug, PartialEq)]
pub enum Frame<'a> {
    /// A whole frame's payload (for JSON, the line without `\n` or `\r\n`).
    Data(&'a [u8]),
    /// A frame over the limit that was skipped.
    TooLarge {
        /// Its size in bytes.
        size: u64,
        /// Its `id`, when its first bytes hold one.
        id: Option<Id>,
    },
}

enum Event {
    Data(Range<usize>),
    TooLarge { size: u64, id: Option<Id> },
}

struct Skip {
    /// Bytes still to drop (MessagePack); `None` means "until the next newline" (JSON).
    remaining: Option<u64>,
    size: u64,
    head: Vec<u8>,
    /// JSON: the last byte counted was a `\r` (not part of the frame if `\n` follows).
    last_cr: bool,
}

/// Splits a byte stream into frames of one codec. See the module docs.
pub struct FrameReader {
    codec: Codec,
    limit: usize,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// JSON: how many bytes after `start` are known to hold no newline.
    scanned: usize,
    skip: Option<Skip>,
}

impl FrameReader {
    /// A reader of `codec` frames with a size limit of `limit` bytes.
    pub fn new(codec: Codec, limit: usize) -> FrameReader {
        FrameReader {
            codec,
            limit,
            buf: Vec::new(),
            start: 0,
            end: 0,
            scanned: 0,
            skip: None,
        }
    }

    /// The codec this reader splits.
    pub fn codec(&self) -> Codec {
        self.codec
    }

    /// Switches codec (after the handshake line, which is JSON in every codec).
    pub fn set_codec(&mut self, codec: Codec) {
        self.codec = codec;
        self.scanned = 0;
    }

    /// Free space to read into; report what was read with [`FrameReader::filled`].
    pub fn read_buf(&mut self) -> &mut [u8] {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            self.scanned = 0;
        }
        if self.buf.len() - self.end < MIN_READ {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if self.buf.len() - self.end < MIN_READ {
                let len = (self.end + MIN_READ).max(self.buf.len() * 2);
                self.buf.resize(len, 0);
            }
        }
        &mut self.buf[self.end..]
    }

    /// Records that `n` bytes were read into [`FrameReader::read_buf`].
    pub fn filled(&mut self, n: usize) {
        self.end += n;
        debug_assert!(self.end <= self.buf.len());
    }

    /// Copies `bytes` in (for callers that already hold the bytes).
    pub fn extend(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let spare = self.read_buf();
            let n = spare.len().min(bytes.len());
            spare[..n].copy_from_slice(&bytes[..n]);
            self.filled(n);
            bytes = &bytes[n..];
        }
    }

    /// The next frame, or `None` when more bytes are needed.
    pub fn next_frame(&mut self) -> Option<Frame<'_>> {
        match self.next_event()? {
            Event::Data(r) => Some(Frame::Data(&self.buf[r])),
            Event::TooLarge { size, id } => Some(Frame::TooLarge { size, id }),
        }
    }

    /// At end of stream: `Ok` for a clean end, an error when a frame was cut off.
    ///
    /// # Errors
    /// [`Truncated`] when bytes of an unfinished frame remain.
    pub fn finish(&self) -> Result<(), Truncated> {
        let pending = (self.end - self.start) as u64;
        match &self.skip {
            // MessagePack: `size` is the declared length, of which `remaining` never came;
            // the prefix arrived too, as it counts for a frame cut before its limit check.
            Some(Skip {
                remaining: Some(remaining),
                size,
                ..
            }) => Err(Truncated {
                buffered: PREFIX as u64 + (size - remaining) + pending,
            }),
            Some(skip) => Err(Truncated {
                buffered: skip.size + pending,
            }),
            None if pending > 0 => Err(Truncated { buffered: pending }),
            None => Ok(()),
        }
    }

    /// The bytes buffered and not yet taken as frames (the start of an unfinished frame).
    pub fn pending(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    fn next_event(&mut self) -> Option<Event> {
        loop {
            if self.skip.is_some() {
                return self.continue_skip();
            }
            let avail = self.end - self.start;
            match self.codec {
                Codec::Json => {
                    let from = self.start + self.scanned;
                    match memchr::memchr(b'\n', &self.buf[from..self.end]) {
                        Some(i) => {
                            let nl = from + i;
                            let mut line_end = nl;
                            if line_end > self.start && self.buf[line_end - 1] == b'\r' {
                                line_end -= 1;
                            }
                            let range = self.start..line_end;
                            self.start = nl + 1;
                            self.scanned = 0;
                            if range.is_empty() {
                                continue; // blank lines carry nothing
                            }
                            if range.len() > self.limit {
                                let id = id_from_head(Codec::Json, &self.buf[range.clone()]);
                                return Some(Event::TooLarge {
                                    size: range.len() as u64,
                                    id,
                                });
                            }
                            return Some(Event::Data(range));
                        }
                        // One byte of slack: a line of exactly `limit` bytes may have
                        // its `\r` here and its `\n` in the next read.
                        None if avail > self.limit + 1 => {
                            self.begin_skip(None, 0);
                        }
                        None => {
                            self.scanned = avail;
                            return None;
                        }
                    }
                }
                Codec::Msgpack => {
                    if avail < PREFIX {
                        return None;
                    }
                    let mut len = [0u8; PREFIX];
                    len.copy_from_slice(&self.buf[self.start..self.start + PREFIX]);
                    let n = u32::from_be_bytes(len) as usize;
                    if n > self.limit {
                        // Every message is a map. A prefix over the limit not followed by
                        // one is not a frame but stray bytes (a worker printing to its
                        // stdout, say): the prefix and that byte are yielded as data,
                        // which fails to decode and says so, rather than skipped as
                        // gigabytes of a frame that never comes. Five bytes, whatever
                        // else is buffered, so that the frames do not depend on the reads.
                        if avail == PREFIX {
                            return None;
                        }
                        if !is_map_marker(self.buf[self.start + PREFIX]) {
                            // (Fewer under a limit of less than five bytes: data never
                            // exceeds the limit.)
                            let range =
                                self.start..self.start + (PREFIX + 1).min(self.limit.max(1));
                            self.start = range.end;
                            return Some(Event::Data(range));
                        }
                        self.start += PREFIX;
                        self.begin_skip(Some(n as u64), n as u64);
                        continue;
                    }
                    if avail < PREFIX + n {
                        return None;
                    }
                    let range = self.start + PREFIX..self.start + PREFIX + n;
                    self.start = range.end;
                    return Some(Event::Data(range));
                }
            }
        }
    }

    /// Starts dropping an oversize frame whose first bytes are buffered at `start`.
    fn begin_skip(&mut self, remaining: Option<u64>, size: u64) {
        self.skip = Some(Skip {
            remaining,
            size: if remaining.is_some() { size } else { 0 },
            head: Vec::with_capacity(HEAD_BYTES),
            last_cr: false,
        });
        self.scanned = 0;
    }

    fn continue_skip(&mut self) -> Option<Event> {
        let skip = self.skip.as_mut().expect("skipping");
        let avail = &self.buf[self.start..self.end];
        let (take, done) = match skip.remaining {
            Some(rem) => {
                let take = (rem as usize).min(avail.len());
                skip.remaining = Some(rem - take as u64);
                (take, rem as usize == take)
            }
            None => match memchr::memchr(b'\n', avail) {
                Some(i) => {
                    let body = if i > 0 && avail[i - 1] == b'\r' {
                        i - 1
                    } else {
                        i
                    };
                    skip.size += body as u64;
                    if i == 0 && skip.last_cr {
                        // The `\r` that ended the previous read ends the line: it is
                        // neither counted nor part of the head the id is read from.
                        skip.size -= 1;
                        skip.head
                            .truncate(usize::try_from(skip.size).unwrap_or(usize::MAX));
                    }
                    let room = HEAD_BYTES - skip.head.len();
                    skip.head.extend_from_slice(&avail[..body.min(room)]);
                    self.start += i + 1;
                    let skip = self.skip.take().expect("skipping");
                    let id = id_from_head(Codec::Json, &skip.head);
                    return Some(Event::TooLarge {
                        size: skip.size,
                        id,
                    });
                }
                None => {
                    skip.size += avail.len() as u64;
                    skip.last_cr = avail.last() == Some(&b'\r');
                    (avail.len(), false)
                }
            },
        };
        let room = HEAD_BYTES - skip.head.len();
        skip.head.extend_from_slice(&avail[..take.min(room)]);
        self.start += take;
        if !done {
            return None;
        }
        let skip = self.skip.take().expect("skipping");
        let id = id_from_head(self.codec, &skip.head);
        Some(Event::TooLarge {
            size: skip.size,
            id,
        })
    }
}

/// Reads the `id` from the first bytes of a frame, if the frame starts with it (as every
/// writer of this protocol does).
pub fn id_from_head(codec: Codec, head: &[u8]) -> Option<Id> {
    match codec {
        Codec::Json => json_id_from_head(head),
        Codec::Msgpack => msgpack_id_from_head(head),
    }
}

fn json_id_from_head(head: &[u8]) -> Option<Id> {
    let mut i = 0;
    let skip_ws = |i: &mut usize| {
        while *i < head.len() && head[*i].is_ascii_whitespace() {
            *i += 1;
        }
    };
    let expect = |i: &mut usize, lit: &[u8]| -> Option<()> {
        head.get(*i..*i + lit.len()).filter(|s| *s == lit)?;
        *i += lit.len();
        Some(())
    };
    skip_ws(&mut i);
    expect(&mut i, b"{")?;
    skip_ws(&mut i);
    expect(&mut i, b"\"id\"")?;
    skip_ws(&mut i);
    expect(&mut i, b":")?;
    skip_ws(&mut i);
    let start = i;
    if head.get(i) == Some(&b'"') {
        i += 1;
        while i < head.len() {
            match head[i] {
                b'\\' => i += 2,
                b'"' => {
                    return serde_json::from_slice::<String>(&head[start..=i])
                        .ok()
                        .map(Id::Str)
                }
                _ => i += 1,
            }
        }
        None
    } else {
        while i < head.len() && (head[i] == b'-' || head[i].is_ascii_digit()) {
            i += 1;
        }
        // The number must end inside the head, or it may have been cut.
        let next = *head.get(i)?;
        if !(next == b',' || next == b'}' || next.is_ascii_whitespace()) {
            return None;
        }
        serde_json::from_slice::<Id>(&head[start..i]).ok()
    }
}

fn msgpack_id_from_head(head: &[u8]) -> Option<Id> {
    use serde::Deserialize;
    let mut rd = head;
    let n = rmp::decode::read_map_len(&mut rd).ok()?;
    if n == 0 {
        return None;
    }
    let (key, rest) = rmp::decode::read_str_from_slice(rd).ok()?;
    if key != "id" {
        return None;
    }
    let mut de = rmp_serde::Deserializer::from_read_ref(rest);
    Id::deserialize(&mut de).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(codec: Codec, limit: usize, stream: &[u8], chunk: usize) -> Vec<String> {
        let mut r = FrameReader::new(codec, limit);
        let mut out = Vec::new();
        for piece in stream.chunks(chunk.max(1)) {
            r.extend(piece);
            while let Some(f) = r.next_frame() {
                out.push(match f {
                    Frame::Data(d) => String::from_utf8_lossy(d).into_owned(),
                    Frame::TooLarge { size, id } => format!("too large {size} {id:?}"),
                });
            }
        }
        if r.finish().is_err() {
            out.push("truncated".into());
        }
        out
    }

    #[test]
    fn json_lines_arrive_whole_whatever_the_read_sizes() {
        let stream = b"{\"id\":1}\n\n{\"id\":2}\r\n";
        for chunk in 1..stream.len() {
            assert_eq!(
                frames(Codec::Json, 64, stream, chunk),
                ["{\"id\":1}", "{\"id\":2}"]
            );
        }
    }

    #[test]
    fn oversize_json_line_is_skipped_at_any_read_size() {
        let big = format!("{{\"id\":42,\"x\":\"{}\"}}", "a".repeat(2000));
        let stream = format!("{big}\n{{\"id\":3}}\n");
        for chunk in [1, 7, 100, 5000] {
            assert_eq!(
                frames(Codec::Json, 100, stream.as_bytes(), chunk),
                [
                    format!("too large {} Some(Uint(42))", big.len()),
                    "{\"id\":3}".into()
                ]
            );
        }
    }

    /// Regression: a line of exactly the limit, whose `\r` and `\n` arrive in different
    /// reads, was reported as too large.
    #[test]
    fn a_line_of_exactly_the_limit_passes_with_crlf_split_across_reads() {
        let line = format!("{{\"id\":1,\"x\":\"{}\"}}", "a".repeat(20));
        let stream = format!("{line}\r\n{{\"id\":2}}\n");
        for chunk in 1..stream.len() {
            let got = frames(Codec::Json, line.len(), stream.as_bytes(), chunk);
            assert_eq!(got, [line.clone(), "{\"id\":2}".into()], "reads of {chunk}");
        }
        // One byte more is too large, and its size excludes the `\r`, at any read size.
        for chunk in 1..stream.len() {
            let got = frames(Codec::Json, line.len() - 1, stream.as_bytes(), chunk);
            assert_eq!(
                got[0],
                format!("too large {} Some(Uint(1))", line.len()),
                "reads of {chunk}"
            );
        }
    }

    /// Regression: text on a MessagePack stream ("hell" read as a 1.7 GB length) was
    /// skipped as one huge frame, swallowing every frame after it, so that a worker's
    /// stray print left its calls hanging until their timeouts.
    #[test]
    fn stray_text_on_a_msgpack_stream_is_data_not_a_huge_frame() {
        let mut stream = b"hello from a print\n".to_vec();
        stream.extend_from_slice(&[0, 0, 0, 1, 0x80]);
        for chunk in 1..stream.len() {
            let got = frames(Codec::Msgpack, 1000, &stream, chunk);
            assert!(got[0].starts_with("hell"), "reads of {chunk}: {got:?}");
            assert!(
                !got.iter().any(|f| f.starts_with("too large")),
                "reads of {chunk}: {got:?}"
            );
        }
        // A real oversize frame (a map follows its prefix) is still skipped, and the
        // frame after it read.
        let mut stream = vec![0, 0, 0x10, 0, 0x81];
        stream.extend(std::iter::repeat_n(b'x', 0x1000 - 1));
        stream.extend_from_slice(&[0, 0, 0, 1, 0x80]);
        for chunk in [1, 3, 100, 5000] {
            assert_eq!(
                frames(Codec::Msgpack, 1000, &stream, chunk),
                ["too large 4096 None", "\u{fffd}"],
                "reads of {chunk}"
            );
        }
    }

    #[test]
    fn buffer_does_not_grow_with_an_oversize_frame() {
        let mut r = FrameReader::new(Codec::Json, 1000);
        let chunk = vec![b'x'; 100_000];
        for _ in 0..100 {
            r.extend(&chunk);
            assert!(r.next_frame().is_none());
        }
        assert!(r.buf.len() < 1_000_000, "buffer grew to {}", r.buf.len());
    }
}
