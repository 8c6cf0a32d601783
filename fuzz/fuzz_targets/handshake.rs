//! The start of a worker's output as the host reads it: lines skipped until one is meant
//! as a handshake (always a JSON line), that line parsed and checked, then the reader
//! switched to the codec it announces (JSON or MessagePack) for the bytes after it.
//!
//! Properties: a handshake that parses is a candidate, has the defaults filled in,
//! re-encodes (`to_line`) to one line that parses to the same handshake, is accepted for
//! its own manifest and refused, naming the rule, for another module, codec or missing
//! method; a refused line gets an error with a message. The session gives, at any read
//! sizes and limit, the handshake and then exactly the frames a fresh reader of the
//! announced codec gives for the bytes after the line, and those frames decode (see
//! `json_frames`/`msgpack_frames`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use polyglot_fuzz::{
    check_frame, drain, limits, model, read_patterns, Event, Outcome, Reads, MAX_INPUT,
};
use polyglot_protocol::{
    Codec, Expected, Frame, FrameReader, Handshake, HandshakeError, PROTOCOL_VERSION,
};

fuzz_target!(|data: &[u8]| {
    let data = &data[..data.len().min(MAX_INPUT)];
    // The first line alone, as `Handshake::parse` may be handed anything.
    let first = data.split(|&b| b == b'\n').next().unwrap_or_default();
    check_line(first);

    for (i, limit) in limits(data).into_iter().enumerate() {
        let expected = model_session(limit, data);
        for reads in read_patterns(data) {
            let got = session(limit, data, reads);
            assert_eq!(
                got, expected,
                "session with limit {limit} and {reads:?} reads differs from the model"
            );
        }
        let Some(Ok(hs)) = &expected.0 else { continue };
        if i == 0 {
            for event in &expected.1.events {
                if let Event::Data(frame) = event {
                    check_frame(hs.codec, frame);
                }
            }
        }
    }
});

type Session = (Option<Result<Handshake, HandshakeError>>, Outcome);

/// What the host does: skip lines until a candidate, parse it, switch codec, read on.
fn session(limit: usize, stream: &[u8], reads: Reads) -> Session {
    let mut reader = FrameReader::new(Codec::Json, limit);
    let mut handshake: Option<Result<Handshake, HandshakeError>> = None;
    let mut after = Vec::new();
    let mut sizes = reads.sizes();
    let mut rest = stream;
    loop {
        if handshake.is_none() {
            while let Some(frame) = reader.next_frame() {
                if let Frame::Data(line) = frame {
                    if Handshake::is_candidate(line) {
                        check_line(line);
                        handshake = Some(Handshake::parse(line));
                        break;
                    }
                }
            }
            match &handshake {
                Some(Ok(h)) => reader.set_codec(h.codec),
                // Refused: the host stops reading this worker.
                Some(Err(_)) => break,
                None => assert!(
                    reader.pending().len() <= limit + 1,
                    "a line over the limit held"
                ),
            }
        }
        if matches!(handshake, Some(Ok(_))) {
            drain(&mut reader, limit, &mut after);
        }
        if rest.is_empty() {
            break;
        }
        let spare = reader.read_buf();
        let n = sizes().min(spare.len()).min(rest.len());
        spare[..n].copy_from_slice(&rest[..n]);
        reader.filled(n);
        rest = &rest[n..];
    }
    let truncated = match handshake {
        Some(Ok(_)) => reader.finish().err().map(|t| t.buffered),
        _ => None,
    };
    (
        handshake,
        Outcome {
            events: after,
            truncated,
        },
    )
}

/// The model: the JSON lines until the first candidate, then the announced codec's model
/// on the bytes after that line.
fn model_session(limit: usize, stream: &[u8]) -> Session {
    let none = Outcome {
        events: Vec::new(),
        truncated: None,
    };
    let mut pos = 0;
    while let Some(i) = memchr::memchr(b'\n', &stream[pos..]) {
        let mut line = &stream[pos..pos + i];
        pos += i + 1;
        if line.last() == Some(&b'\r') {
            line = &line[..line.len() - 1];
        }
        if line.is_empty() || line.len() > limit || !Handshake::is_candidate(line) {
            continue;
        }
        return match Handshake::parse(line) {
            Ok(h) => {
                let after = model(h.codec, limit, &stream[pos..]);
                (Some(Ok(h)), after)
            }
            Err(e) => (Some(Err(e)), none),
        };
    }
    (None, none)
}

/// The properties of parsing one line as a handshake.
fn check_line(line: &[u8]) {
    let candidate = Handshake::is_candidate(line);
    let h = match Handshake::parse(line) {
        Ok(h) => h,
        Err(e) => {
            assert!(
                !e.to_string().trim().is_empty(),
                "an error without a message"
            );
            match e {
                HandshakeError::Malformed(m) => assert!(!m.trim().is_empty()),
                HandshakeError::UnsupportedVersion { worker, host } => {
                    assert_eq!(host, PROTOCOL_VERSION);
                    assert_ne!(worker, u64::from(PROTOCOL_VERSION));
                }
                other => panic!("parse made a check's error: {other:?}"),
            }
            return;
        }
    };
    assert!(
        candidate,
        "a line that parses as a handshake is not a candidate"
    );
    assert_eq!(h.protocol, u64::from(PROTOCOL_VERSION));
    assert!(h.max_concurrency >= 1, "maxConcurrency 0 accepted");
    if h.transport.as_deref() == Some("grpc") {
        assert!(h.address.as_deref().is_some_and(|a| !a.is_empty()));
    }

    let text = h.to_line();
    let body = text
        .strip_suffix('\n')
        .expect("to_line ends with a newline");
    assert!(!body.contains('\n'), "to_line made two lines");
    assert!(Handshake::is_candidate(body.as_bytes()));
    assert_eq!(
        Handshake::parse(body.as_bytes()).as_ref(),
        Ok(&h),
        "to_line does not parse to the same handshake"
    );

    // Accepted for its own manifest, refused with the rule named for another.
    let methods = h.methods.clone();
    let own = Expected {
        module: &h.module,
        codec: h.codec,
        capabilities: &methods,
    };
    assert_eq!(h.check(&own), Ok(()));
    let other_codec = match h.codec {
        Codec::Json => Codec::Msgpack,
        Codec::Msgpack => Codec::Json,
    };
    assert_eq!(
        h.check(&Expected {
            codec: other_codec,
            ..own
        }),
        Err(HandshakeError::CodecMismatch {
            expected: other_codec,
            worker: h.codec,
        })
    );
    let other_module = format!("{}-other", h.module);
    assert!(matches!(
        h.check(&Expected {
            module: &other_module,
            ..own
        }),
        Err(HandshakeError::ModuleMismatch { .. })
    ));
    let missing = (0..)
        .map(|i| format!("missing{i}"))
        .find(|m| !h.methods.contains(m))
        .expect("a name it does not serve");
    let wanted = [missing.clone()];
    match h.check(&Expected {
        capabilities: &wanted,
        ..own
    }) {
        Err(e @ HandshakeError::MissingMethods { .. }) => {
            assert!(
                e.to_string().contains(&missing),
                "{e} does not name {missing}"
            )
        }
        other => panic!("a missing method gave {other:?}"),
    }
}
