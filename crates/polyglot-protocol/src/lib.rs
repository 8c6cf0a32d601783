//! The polyglot wire contract in Rust: values, envelopes, the handshake, error codes and
//! framing, for both codecs (newline JSON and length-prefixed MessagePack).
//!
//! Pure types and encode/decode: no I/O, no runtime. The host (`polyglot-core`) and the
//! Rust worker SDK (`polyglot-worker`) both build on it. The rules themselves live in
//! `docs/protocol.md`; `tests/vectors/` holds the cases every SDK replays.
//!
//! # Layout
//! - `value`: [`Value`], JSON's data model plus binary.
//! - `id`: [`Id`], a call id (integer or string), echoed verbatim.
//! - `codec`: [`Codec`], `json` or `msgpack`.
//! - `envelope`: [`Request`], [`Response`], [`WorkerMessage`] and their codecs.
//! - `handshake`: [`Handshake`], its parsing and the host's checks.
//! - `frame`: [`FrameReader`], splitting a byte stream into frames, oversize ones skipped.
//! - `code`: the protocol's error codes.
//! - `error`: [`DecodeError`], [`HandshakeError`], [`Truncated`].
//!
//! # Example
//! ```
//! use polyglot_protocol::{Codec, FrameReader, Frame, Request, Value};
//!
//! let mut wire = Vec::new();
//! Request::new(1u64, "echo", Value::from("hi")).encode(Codec::Msgpack, &mut wire);
//!
//! let mut reader = FrameReader::new(Codec::Msgpack, 1 << 20);
//! reader.extend(&wire);
//! let Some(Frame::Data(frame)) = reader.next_frame() else { panic!("a whole frame") };
//! let req = Request::decode(Codec::Msgpack, frame).unwrap();
//! assert_eq!(req.params, Value::from("hi"));
//! ```
#![forbid(unsafe_code)]

pub mod code;
mod codec;
mod envelope;
mod error;
mod frame;
mod handshake;
mod id;
mod value;

pub use codec::{Codec, UnknownCodec};
pub use envelope::{
    encode_request, frame_payload_len, salvage_id, ErrorObject, LogLevel, LogRecord, Request,
    Response, WorkerMessage,
};
pub use error::{DecodeError, HandshakeError, Truncated};
pub use frame::{id_from_head, Frame, FrameReader, DEFAULT_MAX_FRAME, HEAD_BYTES};
pub use handshake::{env, Expected, Handshake, PROTOCOL_VERSION};
pub use id::Id;
pub use value::{Map, Value, BYTES_KEY};

/// Milliseconds since the Unix epoch, for the `timestamp` fields.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
