//! Compression with zstd: one-shot and streaming, decompression always bounded by a
//! size limit, and the `compress` handler.
//!
//! # Layout
//! - `block`: [`compress()`] and [`decompress()`] for data in memory.
//! - `stream`: [`Encoder`], [`Decoder`], [`compress_stream`], [`decompress_stream`] for
//!   data larger than memory.
//! - `handler`: [`handler()`], the methods `compress` and `decompress`.

mod block;
mod handler;
mod stream;

pub use block::{compress, decompress, level_range, DEFAULT_LEVEL, DEFAULT_MAX_SIZE, MAX_MAX_SIZE};
pub use handler::{handler, worker, MODULE};
pub use stream::{compress_stream, decompress_stream, Decoder, Encoder};
