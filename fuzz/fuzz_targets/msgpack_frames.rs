//! The length-prefixed MessagePack side of the wire: arbitrary bytes as a stream of
//! frames, read with the default limit and with a small one, whole, byte by byte and in
//! varied reads. The frames must be the reference model's (an oversize frame skipped by
//! its declared length, never buffered or allocated), and every frame decodes to a message
//! that re-encodes to the same message (and to JSON, when JSON can hold it), or to an error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use polyglot_fuzz::{check_stream, MAX_INPUT};
use polyglot_protocol::Codec;

fuzz_target!(|data: &[u8]| {
    let data = &data[..data.len().min(MAX_INPUT)];
    check_stream(Codec::Msgpack, data);
});
