//! One-shot zstd compression and size-bounded decompression of data in memory.

use std::ops::RangeInclusive;

use zstd::zstd_safe;

use crate::error::{Error, Result};

/// The level used when none is given: zstd's own default, which compresses text about
/// as well as gzip -9 at several times its speed.
pub const DEFAULT_LEVEL: i32 = 3;

/// The decompressed size allowed when the caller gives no limit: 256 MiB. Enough for
/// any payload a worker frame (64 MiB by default) can carry at a 4:1 ratio; a
/// "decompression bomb" (a few KiB that claim gigabytes) stops here with an error.
pub const DEFAULT_MAX_SIZE: u64 = 256 << 20;

/// The largest limit a caller may set: 4 GiB. Anything larger is not a limit on a
/// machine this runs on.
pub const MAX_MAX_SIZE: u64 = 4 << 30;

/// The compression levels zstd accepts: negative "fast" levels up to 22.
pub fn level_range() -> RangeInclusive<i32> {
    zstd::compression_level_range()
}

pub(crate) fn check_level(level: i32) -> Result<()> {
    let range = level_range();
    if range.contains(&level) {
        Ok(())
    } else {
        Err(Error::invalid(
            "level",
            format!(
                "must be between {} and {}, got {level}",
                range.start(),
                range.end()
            ),
        ))
    }
}

/// Compresses `data` into one zstd frame that records its size and a checksum of the
/// content.
///
/// # Errors
/// [`Error::InvalidParam`] when `level` is outside [`level_range`].
pub fn compress(data: &[u8], level: i32) -> Result<Vec<u8>> {
    check_level(level)?;
    let mut c = zstd::bulk::Compressor::new(level).map_err(Error::Io)?;
    c.set_parameter(zstd::stream::raw::CParameter::ChecksumFlag(true))
        .map_err(Error::Io)?;
    c.compress(data).map_err(Error::Io)
}

/// Decompresses `data` (one or more zstd frames), producing at most `max_size` bytes.
///
/// A single frame that records its content size (as [`compress`] writes) is checked
/// against `max_size` before anything is decoded, then decoded in one call into a buffer
/// of exactly that size. Otherwise the frames are decoded as a stream and decoding
/// stops as soon as the output would pass `max_size`: memory never exceeds the limit.
///
/// # Errors
/// [`Error::TooLarge`] when the output would exceed `max_size`;
/// [`Error::CorruptData`] when `data` is not valid zstd (empty, truncated, altered).
pub fn decompress(data: &[u8], max_size: u64) -> Result<Vec<u8>> {
    if data.is_empty() {
        return Err(corrupt(
            "the input is empty; a zstd frame is at least 9 bytes",
        ));
    }
    match zstd_safe::get_frame_content_size(data) {
        Ok(Some(size)) if size > max_size => {
            return Err(Error::TooLarge {
                what: "decompressed data",
                limit: max_size,
                actual: Some(size),
            })
        }
        Ok(Some(size)) if zstd_safe::find_frame_compressed_size(data) == Ok(data.len()) => {
            // The frame's own checks (content size, checksum) refuse output that does
            // not match its header.
            return zstd::bulk::decompress(data, size as usize)
                .map_err(|e| Error::CorruptData { source: e });
        }
        Ok(_) => {}
        Err(_) => return Err(corrupt("the input does not start with a zstd frame")),
    }
    // Several frames, or a size the frame does not record: stream with a bound.
    decompress_bounded(data, max_size)
}

/// The first output buffer for data of unknown size: a typical 4:1 ratio, at least
/// 64 KiB so small inputs are decoded in one step.
const FIRST_GUESS_MIN: usize = 64 * 1024;

/// Decodes frame after frame straight into the output's spare capacity, which grows by
/// doubling but never past `max_size + 1` bytes: one byte past the limit is enough to
/// know it is passed. So a bomb costs at most the limit in memory, not twice it (as
/// `read_to_end`'s doubling would), and no byte is copied twice.
fn decompress_bounded(data: &[u8], max_size: u64) -> Result<Vec<u8>> {
    let ceiling = usize::try_from(max_size)
        .unwrap_or(usize::MAX)
        .saturating_add(1);
    let too_large = || Error::TooLarge {
        what: "decompressed data",
        limit: max_size,
        actual: None,
    };
    let mut dctx = zstd_safe::DCtx::try_create()
        .ok_or_else(|| Error::Io(std::io::ErrorKind::OutOfMemory.into()))?;
    let mut input = zstd_safe::InBuffer::around(data);
    let mut out: Vec<u8> = Vec::with_capacity(
        data.len()
            .saturating_mul(4)
            .max(FIRST_GUESS_MIN)
            .min(ceiling),
    );
    loop {
        if out.len() == out.capacity() {
            if out.len() as u64 > max_size {
                return Err(too_large());
            }
            let grow = out.capacity().max(FIRST_GUESS_MIN).min(ceiling - out.len());
            out.reserve_exact(grow);
        }
        let pos = out.len();
        let hint = dctx
            .decompress_stream(
                &mut zstd_safe::OutBuffer::around_pos(&mut out, pos),
                &mut input,
            )
            .map_err(|code| corrupt(zstd_safe::get_error_name(code)))?;
        if out.len() as u64 > max_size {
            return Err(too_large());
        }
        let input_done = input.pos() == data.len();
        if hint == 0 && input_done {
            return Ok(out);
        }
        // All input consumed, room left in the output, and the frame not finished:
        // the input stops inside a frame.
        if input_done && out.len() < out.capacity() {
            return Err(corrupt("the input ends inside a zstd frame"));
        }
    }
}

fn corrupt(what: &str) -> Error {
    Error::CorruptData {
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, what),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_that_claims_more_than_the_limit_is_refused_before_decoding() {
        let packed = compress(&vec![0u8; 1 << 20], 1).unwrap();
        assert!(packed.len() < 1024, "a megabyte of zeros packs small");
        match decompress(&packed, 1000) {
            Err(Error::TooLarge {
                limit: 1000,
                actual: Some(size),
                ..
            }) => assert_eq!(size, 1 << 20),
            other => panic!("expected TooLarge with the claimed size, got {other:?}"),
        }
    }

    #[test]
    fn a_level_out_of_range_is_named() {
        let e = compress(b"x", 99).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("invalid `level`: must be between"),
            "{e}"
        );
    }

    #[test]
    fn concatenated_frames_decode_as_one_stream() {
        let mut both = compress(b"hello ", 3).unwrap();
        both.extend(compress(b"world", 3).unwrap());
        assert_eq!(decompress(&both, 100).unwrap(), b"hello world");
        assert!(matches!(
            decompress(&both, 8),
            Err(Error::TooLarge { actual: None, .. })
        ));
    }
}
