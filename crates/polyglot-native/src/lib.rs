//! The performance-critical operations of polyglot, in Rust, at the speed of the best
//! library for each job: hashing and encryption (`crypto`), compression (`compress`),
//! and JSON and regular expressions over large texts (`text`).
//!
//! Each area is usable three ways:
//! - as a plain Rust API (functions and small types, no worker machinery), for Rust
//!   callers and language bindings;
//! - as a [`polyglot_worker::Handler`] (`crypto::handler()`, ...) that a host mounts
//!   in-process with `Runtime::mount`;
//! - as a standalone worker process: the `polyglot-native` binary, `polyglot-native
//!   crypto|compress|text`, serving one handler over the worker protocol.
//!
//! ```
//! use polyglot_native::{compress, crypto, text};
//!
//! let key = [7u8; 32];
//! let sealed = crypto::encrypt(&key, b"attack at dawn", b"")?;
//! assert_eq!(crypto::decrypt(&key, &sealed, b"")?, b"attack at dawn");
//!
//! let packed = compress::compress(b"aaaaaaaaaaaaaaaaaaaaaaaa", 3)?;
//! assert_eq!(compress::decompress(&packed, 1024)?, b"aaaaaaaaaaaaaaaaaaaaaaaa");
//!
//! let json = text::json_format(br#"{"b": 1, "a": [true, null]}"#, text::JsonStyle::Canonical)?;
//! assert_eq!(json, r#"{"a":[true,null],"b":1}"#);
//! # Ok::<(), polyglot_native::Error>(())
//! ```
//!
//! # Layout
//! - `crypto`: BLAKE3 (plain, keyed, derive-key, any length, parallel for large
//!   inputs), AES-256-GCM sealed messages, Argon2id password key derivation, and the
//!   `crypto` handler.
//! - `compress`: zstd one-shot and streaming, decompression bounded by a size limit,
//!   and the `compress` handler.
//! - `text`: JSON validation and compact, pretty or canonical re-serialization, regex
//!   find / count / replace with a compiled-size limit, and the `text` handler.
//! - `error`: [`Error`], the one error type, and its wire codes.
//! - `params`: reading handler params (named or positional, bytes or strings).
//! - `blocking`: running CPU-heavy calls off the async runtime.
//!
//! The three areas are public modules, not re-exports, because their names are part of
//! the API (`crypto::handler()`, `compress::decompress`, ...).
#![forbid(unsafe_code)]

mod blocking;
pub mod compress;
pub mod crypto;
mod error;
mod params;
pub mod text;

pub use error::{code, Error, PatternProblem, Result};

/// How many calls a native worker takes at once. The work is CPU-bound and runs on
/// tokio's blocking pool, so calls beyond the core count mostly queue; a few more than a
/// large machine's cores keep every core busy while other calls' frames are decoded and
/// their answers written.
pub const MAX_CONCURRENCY: u32 = 16;
