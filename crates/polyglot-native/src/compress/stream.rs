//! Streaming zstd for data larger than memory: an [`Encoder`] that is a `Write`, a
//! [`Decoder`] that is a `Read` and stops at a size limit.

use std::io::{BufRead, BufReader, Read, Write};

use super::block::check_level;
use crate::error::{Error, Result};

/// Compresses everything written to it into `W`. Call [`Encoder::finish`] at the end:
/// it writes the end of the frame.
///
/// ```
/// use std::io::Write;
/// use polyglot_native::compress::{decompress, Encoder};
///
/// let mut enc = Encoder::new(Vec::new(), 3)?;
/// enc.write_all(b"streamed ")?;
/// enc.write_all(b"text")?;
/// let packed = enc.finish()?;
/// assert_eq!(decompress(&packed, 100)?, b"streamed text");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Encoder<W: Write> {
    inner: zstd::stream::write::Encoder<'static, W>,
}

impl<W: Write> Encoder<W> {
    /// An encoder at `level` writing into `writer`; the frame carries a checksum.
    ///
    /// # Errors
    /// [`Error::InvalidParam`] when `level` is outside
    /// [`level_range`](super::level_range).
    pub fn new(writer: W, level: i32) -> Result<Encoder<W>> {
        check_level(level)?;
        let mut inner = zstd::stream::write::Encoder::new(writer, level).map_err(Error::Io)?;
        inner.include_checksum(true).map_err(Error::Io)?;
        Ok(Encoder { inner })
    }

    /// Ends the frame and returns the writer.
    ///
    /// # Errors
    /// [`Error::Io`] when writing fails.
    pub fn finish(self) -> Result<W> {
        self.inner.finish().map_err(Error::Io)
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.inner.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Decompresses what `R` yields, one frame after another, and fails as soon as the
/// output would pass a size limit: reading a decompression bomb costs at most the
/// limit in output, never memory.
///
/// Errors reach the caller as `std::io::Error`s wrapping an [`Error`]:
/// [`Error::TooLarge`] at the limit, [`Error::CorruptData`] for invalid input.
/// [`decompress_stream`] unwraps them.
pub struct Decoder<R: BufRead> {
    inner: zstd::stream::read::Decoder<'static, R>,
    limit: u64,
    produced: u64,
}

impl<R: Read> Decoder<BufReader<R>> {
    /// A decoder of `reader` that yields at most `max_size` bytes.
    ///
    /// # Errors
    /// [`Error::Io`] when the decoder cannot be set up (out of memory).
    pub fn new(reader: R, max_size: u64) -> Result<Decoder<BufReader<R>>> {
        Decoder::with_buffer(BufReader::new(reader), max_size)
    }
}

impl<R: BufRead> Decoder<R> {
    /// A decoder of an already buffered reader (a byte slice is one).
    ///
    /// # Errors
    /// [`Error::Io`] when the decoder cannot be set up (out of memory).
    pub fn with_buffer(reader: R, max_size: u64) -> Result<Decoder<R>> {
        Ok(Decoder {
            inner: zstd::stream::read::Decoder::with_buffer(reader).map_err(Error::Io)?,
            limit: max_size,
            produced: 0,
        })
    }

    /// How many bytes it has produced so far.
    pub fn produced(&self) -> u64 {
        self.produced
    }
}

impl<R: BufRead> Read for Decoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        // One byte past the limit is enough to know the limit is passed.
        let room = (self.limit - self.produced).saturating_add(1);
        let want = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        let n = self
            .inner
            .read(&mut buf[..want])
            .map_err(|e| match e.kind() {
                // zstd reports bad data as `Other`, a cut-off frame as `UnexpectedEof`;
                // anything else comes from the underlying reader and passes through.
                std::io::ErrorKind::Other | std::io::ErrorKind::UnexpectedEof => {
                    Error::CorruptData { source: e }.into_io()
                }
                _ => e,
            })?;
        self.produced += n as u64;
        if self.produced > self.limit {
            return Err(Error::TooLarge {
                what: "decompressed data",
                limit: self.limit,
                actual: None,
            }
            .into_io());
        }
        Ok(n)
    }
}

/// Compresses everything `reader` yields into `writer` as one zstd frame, and returns
/// how many bytes were read.
///
/// # Errors
/// [`Error::InvalidParam`] for a bad `level`, [`Error::Io`] when reading or writing
/// fails.
pub fn compress_stream(mut reader: impl Read, writer: impl Write, level: i32) -> Result<u64> {
    let mut enc = Encoder::new(writer, level)?;
    let n = std::io::copy(&mut reader, &mut enc).map_err(Error::Io)?;
    enc.finish()?;
    Ok(n)
}

/// Decompresses what `reader` yields into `writer`, at most `max_size` bytes, and
/// returns how many bytes were written.
///
/// # Errors
/// [`Error::TooLarge`] at the limit (what was written before stays written),
/// [`Error::CorruptData`] for invalid input, [`Error::Io`] when reading or writing fails.
pub fn decompress_stream(reader: impl Read, mut writer: impl Write, max_size: u64) -> Result<u64> {
    let mut dec = Decoder::new(reader, max_size)?;
    std::io::copy(&mut dec, &mut writer).map_err(Error::from_io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_round_trips_and_stops_at_its_limit() {
        let text = "line of streamed text\n".repeat(10_000);
        let mut packed = Vec::new();
        let read = compress_stream(text.as_bytes(), &mut packed, 3).unwrap();
        assert_eq!(read, text.len() as u64);
        let mut out = Vec::new();
        let written = decompress_stream(&packed[..], &mut out, text.len() as u64).unwrap();
        assert_eq!(written, text.len() as u64);
        assert_eq!(out, text.as_bytes());
        let mut cut = Vec::new();
        match decompress_stream(&packed[..], &mut cut, 1000) {
            Err(Error::TooLarge { limit: 1000, .. }) => {}
            other => panic!("expected TooLarge, got {other:?}"),
        }
        assert!(
            cut.len() <= 1000,
            "wrote {} bytes past the limit",
            cut.len()
        );
    }

    #[test]
    fn a_truncated_stream_is_corrupt_data() {
        let mut packed = Vec::new();
        compress_stream(&b"some data to cut short"[..], &mut packed, 3).unwrap();
        packed.truncate(packed.len() - 5);
        let e = decompress_stream(&packed[..], std::io::sink(), 100).unwrap_err();
        assert_eq!(e.code(), "CORRUPT_DATA", "{e:?}");
    }
}
