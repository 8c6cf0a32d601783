//! The newline-JSON side of the wire: arbitrary bytes as a worker's (or the host's) output
//! stream, read with the default limit and with a small one, whole, byte by byte and in
//! varied reads. The frames must be the reference model's (oversize lines skipped without
//! being buffered, the id read from their head), and every frame decodes to a message
//! that re-encodes to the same message, in JSON and in MessagePack, or to an error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use polyglot_fuzz::{check_stream, MAX_INPUT};
use polyglot_protocol::Codec;

fuzz_target!(|data: &[u8]| {
    let data = &data[..data.len().min(MAX_INPUT)];
    check_stream(Codec::Json, data);
});
