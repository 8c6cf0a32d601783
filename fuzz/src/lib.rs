//! What the fuzz targets share: read patterns like a real pipe's, reference models of the
//! two framings, and the properties every decoded message must have.
//!
//! Each check panics (which libFuzzer reports as a crash) when a property fails; a decoder
//! that merely returns an error is fine, as long as the error names the problem.

/// `crates/polyglot-core/src/manifest.rs`, the very file polyglot-core builds, compiled
/// here on its own: `Manifest::parse` needs nothing else of polyglot-core (but the policy
/// types of `policy.rs`, compiled here too), whose gRPC stack
/// (tonic, hyper, prost, the Rust worker SDK) would triple the build of these targets and
/// never run in them. The types are this copy's, the code and its behaviour the crate's.
#[path = "../../crates/polyglot-core/src/manifest.rs"]
#[allow(dead_code, rustdoc::broken_intra_doc_links)]
pub mod manifest;

/// `crates/polyglot-core/src/policy.rs`: the call policies `manifest.rs` reads.
#[path = "../../crates/polyglot-core/src/policy.rs"]
#[allow(dead_code, rustdoc::broken_intra_doc_links)]
pub mod policy;

use memchr::memchr;
use polyglot_protocol::{
    frame_payload_len, id_from_head, salvage_id, Codec, DecodeError, Frame, FrameReader, Id,
    Request, Response, Value, WorkerMessage, DEFAULT_MAX_FRAME, HEAD_BYTES,
};

/// Largest input the targets read: libFuzzer's `-max_len` is set below this by
/// `scripts/fuzz.sh`; longer inputs (from a hand-made corpus) are cut, so that one run
/// stays fast.
pub const MAX_INPUT: usize = 64 * 1024;

/// FNV-1a: derives read sizes and limits from the input itself, so that seeds are plain
/// byte streams and every mutation also varies how the stream is read.
pub fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// How a stream arrives: all at once, a byte at a time, or in pseudo-random reads.
#[derive(Debug, Clone, Copy)]
pub enum Reads {
    /// One read of the whole stream.
    Whole,
    /// One byte per read.
    Bytewise,
    /// Reads of varied sizes (mostly small, sometimes large), from this seed.
    Varied(u64),
}

impl Reads {
    /// The size of each next read.
    pub fn sizes(self) -> impl FnMut() -> usize {
        let mut state = match self {
            Reads::Varied(seed) => seed | 1,
            _ => 1,
        };
        move || match self {
            Reads::Whole => usize::MAX,
            Reads::Bytewise => 1,
            Reads::Varied(_) => {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                match state % 8 {
                    0 => 1 + (state >> 8) as usize % 1024,
                    1 => usize::MAX,
                    _ => 1 + (state >> 8) as usize % 16,
                }
            }
        }
    }
}

/// One thing a frame reader yields, owned, to compare runs.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A whole frame's payload.
    Data(Vec<u8>),
    /// An oversize frame, skipped.
    TooLarge {
        /// Its size.
        size: u64,
        /// The id read from its first bytes.
        id: Option<Id>,
    },
}

/// Everything read from one stream: its frames, and at the end whether (and with how many
/// bytes) the stream stopped inside a frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The frames, in order.
    pub events: Vec<Event>,
    /// `Some(bytes of the unfinished frame)` when the stream ended inside one.
    pub truncated: Option<u64>,
}

/// Feeds `stream` to a fresh reader through `read_buf`/`filled` (as the host does with a
/// pipe), taking frames after every read. Checks on the way that each frame respects the
/// limit and that the reader never holds more than one frame's worth of bytes.
pub fn read_stream(codec: Codec, limit: usize, stream: &[u8], reads: Reads) -> Outcome {
    let mut reader = FrameReader::new(codec, limit);
    let mut events = Vec::new();
    let mut sizes = reads.sizes();
    let mut rest = stream;
    while !rest.is_empty() {
        let spare = reader.read_buf();
        assert!(!spare.is_empty(), "read_buf offers no space");
        let n = sizes().min(spare.len()).min(rest.len());
        spare[..n].copy_from_slice(&rest[..n]);
        reader.filled(n);
        rest = &rest[n..];
        drain(&mut reader, limit, &mut events);
    }
    drain(&mut reader, limit, &mut events);
    Outcome {
        events,
        truncated: reader.finish().err().map(|t| t.buffered),
    }
}

/// Takes every frame the reader has, checking each against the limit, then checks that
/// what stays buffered is less than one frame (oversize frames are never buffered).
pub fn drain(reader: &mut FrameReader, limit: usize, events: &mut Vec<Event>) {
    let codec = reader.codec();
    while let Some(frame) = reader.next_frame() {
        events.push(match frame {
            Frame::Data(d) => {
                assert!(
                    d.len() <= limit,
                    "a {}-byte frame over the limit {limit}",
                    d.len()
                );
                if codec == Codec::Json {
                    assert!(!d.is_empty(), "an empty JSON frame");
                    assert!(memchr(b'\n', d).is_none(), "a JSON frame holding a newline");
                }
                Event::Data(d.to_vec())
            }
            Frame::TooLarge { size, id } => {
                assert!(
                    size > limit as u64,
                    "a {size}-byte frame reported over {limit}"
                );
                Event::TooLarge { size, id }
            }
        });
    }
    // JSON: up to the limit plus a `\r` (its `\n` may come next); MessagePack: a prefix and
    // less than a whole frame.
    let held = reader.pending().len();
    assert!(
        held <= limit.saturating_add(4),
        "{held} bytes buffered with a limit of {limit}"
    );
}

/// The reference model of newline-JSON framing (`docs/protocol.md`, section 3), written
/// the obvious way: split at `\n`, drop one `\r` before it, skip blank lines; a line over
/// the limit is reported with its size and the id read from its first [`HEAD_BYTES`].
pub fn model_json(limit: usize, stream: &[u8]) -> Outcome {
    let mut events = Vec::new();
    let mut pos = 0;
    while let Some(i) = memchr(b'\n', &stream[pos..]) {
        let mut line = &stream[pos..pos + i];
        pos += i + 1;
        if line.last() == Some(&b'\r') {
            line = &line[..line.len() - 1];
        }
        if line.is_empty() {
            continue;
        }
        events.push(if line.len() > limit {
            Event::TooLarge {
                size: line.len() as u64,
                id: id_from_head(Codec::Json, &line[..line.len().min(HEAD_BYTES)]),
            }
        } else {
            Event::Data(line.to_vec())
        });
    }
    let rest = (stream.len() - pos) as u64;
    Outcome {
        events,
        truncated: (rest > 0).then_some(rest),
    }
}

/// The reference model of length-prefixed MessagePack framing: a 4-byte big-endian length,
/// then that many bytes; a frame over the limit is reported with its declared size and the
/// id read from its first [`HEAD_BYTES`], unless no map follows its prefix: then the prefix
/// and the byte after it are data (stray bytes). An unfinished frame counts its prefix.
pub fn model_msgpack(limit: usize, stream: &[u8]) -> Outcome {
    let mut events = Vec::new();
    let mut pos = 0;
    while stream.len() - pos >= 4 {
        let n = u32::from_be_bytes(stream[pos..pos + 4].try_into().unwrap()) as usize;
        let body = &stream[pos + 4..];
        if n > limit && !body.is_empty() && !matches!(body[0], 0x80..=0x8f | 0xde | 0xdf) {
            // Stray bytes, not a map: the prefix and one byte, as data.
            let take = 5.min(limit.max(1));
            events.push(Event::Data(stream[pos..pos + take].to_vec()));
            pos += take;
            continue;
        }
        if body.len() < n {
            break;
        }
        let payload = &body[..n];
        events.push(if n > limit {
            Event::TooLarge {
                size: n as u64,
                id: id_from_head(Codec::Msgpack, &payload[..n.min(HEAD_BYTES)]),
            }
        } else {
            Event::Data(payload.to_vec())
        });
        pos += 4 + n;
    }
    let rest = (stream.len() - pos) as u64;
    Outcome {
        events,
        truncated: (rest > 0).then_some(rest),
    }
}

/// The model of `codec`.
pub fn model(codec: Codec, limit: usize, stream: &[u8]) -> Outcome {
    match codec {
        Codec::Json => model_json(limit, stream),
        Codec::Msgpack => model_msgpack(limit, stream),
    }
}

/// The read patterns a stream is fed in: whole and varied, and byte by byte when short
/// (the varied reads are mostly small already; a byte at a time of a long input would
/// only slow the fuzzer down).
pub fn read_patterns(data: &[u8]) -> Vec<Reads> {
    let mut reads = vec![Reads::Whole, Reads::Varied(fnv(data))];
    if data.len() <= 1024 {
        reads.push(Reads::Bytewise);
    }
    reads
}

/// The limits a stream is read with: the default, and one derived from the input near its
/// own size (so that some of its frames are over it).
pub fn limits(data: &[u8]) -> [usize; 2] {
    let h = fnv(data);
    [DEFAULT_MAX_FRAME, 1 + (h >> 32) as usize % (data.len() + 2)]
}

/// The frame-reader property: whatever the limit and however the stream is cut into reads,
/// the reader yields exactly what the model does. Then every frame is decoded
/// ([`check_frame`]). Returns the frames read with the default limit.
pub fn check_stream(codec: Codec, data: &[u8]) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    for (i, limit) in limits(data).into_iter().enumerate() {
        let expected = model(codec, limit, data);
        for reads in read_patterns(data) {
            let got = read_stream(codec, limit, data, reads);
            assert_eq!(
                got, expected,
                "{codec} frames with limit {limit} and {reads:?} reads differ from the model"
            );
        }
        if i == 0 {
            frames = expected
                .events
                .into_iter()
                .filter_map(|e| match e {
                    Event::Data(d) => Some(d),
                    Event::TooLarge { .. } => None,
                })
                .collect();
        }
    }
    for frame in &frames {
        check_frame(codec, frame);
    }
    frames
}

/// Decoding one frame, both as a worker reads it ([`Request`]) and as the host reads it
/// ([`WorkerMessage`]): an error names its problem; a message re-encodes to one frame that
/// decodes to the same message and encodes to the same bytes; a JSON message also survives
/// MessagePack, and a MessagePack one JSON when JSON can hold it.
pub fn check_frame(codec: Codec, frame: &[u8]) {
    let head_id = id_from_head(codec, frame);
    match WorkerMessage::decode(codec, frame) {
        Ok(msg) => {
            if let Some(id) = message_id(&msg) {
                if let Some(h) = &head_id {
                    assert_eq!(h, id, "id_from_head reads another id than the decoder");
                }
            }
            round_trip_message(codec, &msg);
            if codec == Codec::Json {
                round_trip_message(Codec::Msgpack, &msg);
            } else if message_fits_json(&msg) {
                round_trip_message(Codec::Json, &msg);
            } else {
                // JSON cannot hold it all, but encoding it must not fail.
                msg.encode(Codec::Json, &mut Vec::new());
            }
        }
        Err(e) => check_error(&e),
    }
    match Request::decode(codec, frame) {
        Ok(req) => {
            assert_eq!(
                salvage_id(codec, frame),
                req.id,
                "salvage_id reads another id than the decoder"
            );
            if let (Some(h), Some(id)) = (&head_id, &req.id) {
                assert_eq!(h, id, "id_from_head reads another id than the decoder");
            }
            round_trip_request(codec, &req);
            if codec == Codec::Json {
                round_trip_request(Codec::Msgpack, &req);
            } else if value_fits_json(&req.params, 2) {
                round_trip_request(Codec::Json, &req);
            } else {
                req.encode(Codec::Json, &mut Vec::new());
            }
        }
        Err(e) => {
            check_error(&e);
            // What the host does with a request it cannot read: answer by its id if any.
            let _ = salvage_id(codec, frame);
        }
    }
}

/// A decode error is a value that says what is wrong.
pub fn check_error(e: &DecodeError) {
    let text = e.to_string();
    assert!(!text.trim().is_empty(), "an error without a message: {e:?}");
    if let DecodeError::Invalid(m) = e {
        assert!(!m.trim().is_empty(), "an Invalid error without a message");
    }
}

fn message_id(msg: &WorkerMessage) -> Option<&Id> {
    match msg {
        WorkerMessage::Response(Response { id, .. }) | WorkerMessage::Progress { id, .. } => {
            Some(id)
        }
        WorkerMessage::Log(_) => None,
    }
}

/// The payload of the only frame in `wire`: a JSON line holding no other newline, or a
/// MessagePack map behind its length. (Checked by hand: a `FrameReader` per message would
/// zero its 64 KiB buffer each time, the bulk of a run.)
fn only_frame(codec: Codec, wire: &[u8]) -> Vec<u8> {
    let len = frame_payload_len(codec, wire, 0);
    let frame = match codec {
        Codec::Json => {
            assert_eq!(
                wire.last(),
                Some(&b'\n'),
                "a JSON frame without its newline"
            );
            assert!(
                memchr(b'\n', &wire[..len]).is_none(),
                "an encoded message is two JSON lines"
            );
            &wire[..len]
        }
        Codec::Msgpack => {
            let prefix = u32::from_be_bytes(wire[..4].try_into().expect("a 4-byte prefix"));
            assert_eq!(
                prefix as usize, len,
                "a MessagePack prefix that is not its length"
            );
            &wire[4..]
        }
    };
    assert!(!frame.is_empty(), "an empty frame");
    frame.to_vec()
}

fn round_trip_message(codec: Codec, msg: &WorkerMessage) {
    let mut wire = Vec::new();
    msg.encode(codec, &mut wire);
    let frame = only_frame(codec, &wire);
    if let Some(id) = message_id(msg) {
        // Writers put `id` first, so an oversize frame can be attributed.
        assert_eq!(
            id_from_head(codec, &frame).as_ref(),
            Some(id),
            "the id of an encoded message is not first"
        );
    }
    let again = WorkerMessage::decode(codec, &frame)
        .unwrap_or_else(|e| panic!("an encoded {codec} message does not decode: {e}\n{msg:?}"));
    let mut wire2 = Vec::new();
    again.encode(codec, &mut wire2);
    assert_eq!(wire, wire2, "{codec} encoding is not stable");
    assert!(
        again == *msg || message_has_nan(msg),
        "{codec} round trip changed the message:\n{msg:?}\n{again:?}"
    );
}

fn round_trip_request(codec: Codec, req: &Request) {
    let mut wire = Vec::new();
    req.encode(codec, &mut wire);
    let frame = only_frame(codec, &wire);
    if let Some(id) = &req.id {
        assert_eq!(
            id_from_head(codec, &frame).as_ref(),
            Some(id),
            "the id of an encoded request is not first"
        );
    }
    let again = Request::decode(codec, &frame)
        .unwrap_or_else(|e| panic!("an encoded {codec} request does not decode: {e}\n{req:?}"));
    let mut wire2 = Vec::new();
    again.encode(codec, &mut wire2);
    assert_eq!(wire, wire2, "{codec} encoding is not stable");
    assert!(
        again == *req || has_nan(&req.params),
        "{codec} round trip changed the request:\n{req:?}\n{again:?}"
    );
}

fn message_values(msg: &WorkerMessage) -> Vec<&Value> {
    match msg {
        WorkerMessage::Response(r) => match &r.outcome {
            Ok(v) => vec![v],
            Err(e) => e.data.iter().collect(),
        },
        WorkerMessage::Progress { progress, .. } => vec![progress],
        WorkerMessage::Log(l) => l.fields.iter().collect(),
    }
}

fn message_has_nan(msg: &WorkerMessage) -> bool {
    message_values(msg).into_iter().any(has_nan)
}

fn message_fits_json(msg: &WorkerMessage) -> bool {
    // The envelope and, for an error's data or a log's fields, one more object around it.
    message_values(msg)
        .into_iter()
        .all(|v| value_fits_json(v, 3))
}

/// Whether `v` is a NaN or holds one (NaN is not equal to itself).
pub fn has_nan(v: &Value) -> bool {
    match v {
        Value::Float(f) => f.is_nan(),
        Value::Array(a) => a.iter().any(has_nan),
        Value::Map(m) => m.values().any(has_nan),
        _ => false,
    }
}

/// Whether JSON holds `v` exactly, nested `depth` levels deep in a message: only finite
/// floats (JSON has no others), no object that reads as binary (`{"$bytes": ...}` alone),
/// and within serde_json's nesting limit of 128.
pub fn value_fits_json(v: &Value, depth: usize) -> bool {
    if depth >= 128 {
        return false;
    }
    match v {
        Value::Float(f) => f.is_finite(),
        Value::Array(a) => a.iter().all(|v| value_fits_json(v, depth + 1)),
        Value::Map(m) => {
            !(m.len() == 1 && m.contains_key(polyglot_protocol::BYTES_KEY))
                && m.values().all(|v| value_fits_json(v, depth + 1))
        }
        _ => true,
    }
}
